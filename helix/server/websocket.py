"""``/sessions/{sid}/ws``: one WebSocket per client and session.

Server to client, each chunk is one text frame holding exactly the chunk's stored JSON (as in
``/history`` and on SSE): replay from ``?fromSeq=N`` (inclusive; default 1, the whole stream), then live,
with no gap and no duplicate (both are the same pull from the runtime). The connection may be opened
before any run exists and stays open while the session's actor hibernates.

Client to server, JSON text frames ``{"type": "start" | "resume" | "retry" | "interrupt" | "abort",
"id"?: any, ...the same body as the HTTP command}``, handled one at a time in arrival order, each after the
connection is registered (so a ``start`` sent right after connecting streams its whole run). Chunks wait
while a command is handled, so a command's answer comes before any chunk it caused. Answers:

- ``{"type": "ack", "command", "id"?, "sessionId", "runId", "streamId"?, "status", "firstSeq"?}``;
- ``{"type": "error", "command"?, "id"?, "httpStatus", "error": {"code", "message", "details"?}}`` for a
  refused command, invalid JSON, an unknown type or a binary frame; the connection stays open.

Frames that are not chunks never carry a top-level ``seq``. Close codes: 1009 for a frame over
``max_ws_frame_bytes``; 4008 when a frame could not be sent for ``ws_send_timeout`` seconds (up to a
sixteenth more; the client stopped reading; it may reconnect from the seq after its last one); 1001 when
the server shuts down; 1011 when the stream broke. Refusals before the handshake (bad session id or
``fromSeq``, ``authorize``, more than ``max_websockets_per_session``) are plain HTTP answers with the
usual JSON error body.

Memory per connection is bounded: chunks are pulled from the runtime as the socket takes them, in groups
of what is available (at most a page of ``/history``); no queue grows for a slow client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio
from quart_trio.wrappers import TrioResponse, TrioWebsocket

from actors import DirectoryClosedError
from stores import StoredChunk

from ..errors import InvalidRequestError
from ..runtime import check_session_id
from . import wire
from .actions import ACTIONS, ActionRequest, perform
from .errors import RouteNotFoundError, TooManyConnectionsError, error_payload
from .hooks import AbortResult
from .paths import SessionPath
from .requests import parse_count, parse_json, query_value
from .responses import abort_response, error_response
from .services import ServerServices

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TOO_SLOW = 4008


async def serve_websocket(
    services: ServerServices, websocket: TrioWebsocket, path: SessionPath | None
) -> TrioResponse | None:
    """Refuse with an HTTP answer before the handshake, or accept and serve until either side leaves."""
    try:
        if path is None or path.route != "ws":
            raise RouteNotFoundError(websocket.path)
        session_id = check_session_id(path.session_id)
        from_seq = parse_count(query_value(websocket.args, "fromSeq"), "fromSeq", default=1)
        refusal = await services.authorize(
            request=websocket, route="ws", method="GET", transport="websocket", session_id=session_id
        )
        if refusal is not None:
            return abort_response(refusal)
        limit = services.limits.max_websockets_per_session
        if services.websockets[session_id] >= limit:
            raise TooManyConnectionsError(limit)
    except trio.Cancelled:
        raise
    except Exception as exc:
        return error_response(exc, services.logger)
    services.websockets[session_id] += 1
    connection = _Connection(services, websocket, session_id)
    try:
        await websocket.accept()
        await connection.serve(from_seq)
    except DirectoryClosedError:
        await connection.close(
            CLOSE_GOING_AWAY, "server shutting down; reconnect with fromSeq=<last seq + 1>"
        )
    except Exception as exc:  # the subscription could not start (the runtime is closing, a file broke)
        services.logger.error("WebSocket of session %r failed", session_id, exc_info=exc)
        await connection.close(CLOSE_INTERNAL, "stream failed; reconnect with fromSeq=<last seq + 1>")
    finally:
        services.websockets[session_id] -= 1
        if services.websockets[session_id] <= 0:
            del services.websockets[session_id]
    return None


class _TooSlowError(Exception):
    pass


class _Connection:
    def __init__(self, services: ServerServices, websocket: TrioWebsocket, session_id: str) -> None:
        self.services = services
        self.websocket = websocket
        self.session_id = session_id
        self._send_lock = trio.Lock()
        self._frame_started: float | None = None  # when the frame being sent began, if one is
        self._frames_begun = 0
        self._watching = False  # whether a _watch_sends task is running

    async def serve(self, from_seq: int) -> None:
        metrics = self.services.metrics
        with metrics.websocket_connections.track_inprogress(), metrics.clock.listening(self.session_id):
            since = trio.current_time()
            runtime = self.services.runtime
            async with runtime.subscribe_batches(self.session_id, from_seq=from_seq) as batches:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._send_chunks, batches, since, nursery.cancel_scope)
                    try:
                        await self._serve_commands()
                    except _TooSlowError:
                        await self.close(
                            CLOSE_TOO_SLOW, "client too slow; reconnect with fromSeq=<last seq + 1>"
                        )
                    nursery.cancel_scope.cancel()

    # -- server to client ------------------------------------------------------------------------

    async def _send_locked(self, text: str) -> None:
        with trio.move_on_after(self.services.limits.ws_send_timeout) as scope:
            await self.websocket.send(text)
        if scope.cancelled_caught:
            raise _TooSlowError

    async def _send_chunks(
        self, batches: AsyncIterator[list[StoredChunk]], since: float, done: trio.CancelScope
    ) -> None:
        timeout = self.services.limits.ws_send_timeout
        try:
            with trio.CancelScope() as sending:
                async with trio.open_nursery() as nursery:
                    async for batch in batches:
                        # Uncontended (no command being handled), take the lock without the scheduling
                        # round trio.Lock.acquire spends: the send that follows yields anyway.
                        try:
                            self._send_lock.acquire_nowait()
                        except trio.WouldBlock:
                            await self._send_lock.acquire()
                        try:
                            # No await between this check and the first frame's timestamp, so the
                            # watcher cannot leave in between.
                            if not self._watching:
                                self._watching = True
                                nursery.start_soon(self._watch_sends, timeout, sending)
                            for stored in batch:
                                self._frame_started = trio.current_time()
                                self._frames_begun += 1
                                await self.websocket.send(stored.json)
                            self._frame_started = None
                        finally:
                            self._send_lock.release()
                        self.services.metrics.chunks_sent(self.session_id, batch, since=since)
            if sending.cancelled_caught:
                raise _TooSlowError
        except _TooSlowError:
            await self.close(CLOSE_TOO_SLOW, "client too slow; reconnect with fromSeq=<last seq + 1>")
        except DirectoryClosedError:
            await self.close(CLOSE_GOING_AWAY, "server shutting down; reconnect with fromSeq=<last seq + 1>")
        except Exception as exc:
            self.services.logger.error("stream of session %r broke", self.session_id, exc_info=exc)
            await self.close(CLOSE_INTERNAL, "stream failed; reconnect with fromSeq=<last seq + 1>")
        done.cancel()

    async def _watch_sends(self, timeout: float, sending: trio.CancelScope) -> None:
        """Cancel ``sending`` once a frame has been waiting ``timeout`` seconds for the client (checked
        every sixteenth of it). A timestamp per frame costs less than a cancel scope or a deadline move
        per frame, which showed in profiles of many sessions streaming at once. The watcher leaves after
        a quiet period (the next group starts it again), so an idle connection holds no task or timer."""
        seen = -1
        while True:
            await trio.sleep(timeout / 16)
            started = self._frame_started
            if started is not None:
                if trio.current_time() - started >= timeout:
                    sending.cancel()
                    return
            elif self._frames_begun == seen:
                self._watching = False
                return
            seen = self._frames_begun

    async def close(self, code: int, reason: str) -> None:
        with trio.move_on_after(1.0):
            await self.websocket.close(code, reason)

    # -- client to server ------------------------------------------------------------------------

    async def _serve_commands(self) -> None:
        limit = self.services.limits.max_ws_frame_bytes
        while True:
            message = await self.websocket.receive()
            data = message.encode("utf-8") if isinstance(message, str) else None
            if data is not None and len(data) > limit:
                await self.close(CLOSE_TOO_BIG, f"frame larger than {limit} bytes")
                return
            # Chunks wait while a command is handled, so its ack goes out before the chunks it caused.
            async with self._send_lock:
                if data is None:
                    await self._reply_error(
                        InvalidRequestError("binary frames are not supported; send JSON text")
                    )
                else:
                    await self._handle(data)

    async def _handle(self, data: bytes) -> None:
        command: str | None = None
        command_id: Any = None
        try:
            frame = parse_json(data, max_depth=self.services.limits.json_max_depth)
            if not isinstance(frame, dict):
                raise InvalidRequestError("a command is a JSON object with a type")
            command_id = frame.get("id")
            kind = frame.get("type")
            if kind not in ACTIONS:
                raise InvalidRequestError(
                    f"unknown command type {str(kind)[:64]!r}; use one of {', '.join(ACTIONS)}",
                    details=[{"loc": ["type"], "msg": "unknown command type", "type": "enum"}],
                )
            command = str(kind)
            body = {key: value for key, value in frame.items() if key not in ("type", "id")}
            refusal = await self.services.authorize(
                request=self.websocket,
                route=command,
                method="POST",
                transport="websocket",
                session_id=self.session_id,
                body=body,
            )
            if refusal is not None:
                await self._reply_refusal(command, command_id, refusal)
                return
            outcome = await perform(
                ActionRequest(
                    services=self.services,
                    action=command,
                    session_id=self.session_id,
                    body=body,
                    request=self.websocket,
                    transport="websocket",
                )
            )
        except trio.Cancelled:
            raise
        except (_TooSlowError, trio.BrokenResourceError):
            raise
        except Exception as exc:
            await self._reply_error(exc, command, command_id)
            return
        if isinstance(outcome, AbortResult):
            await self._reply_refusal(command, command_id, outcome)
            return
        ack: dict[str, Any] = {"type": "ack", "command": command, **_with_id(command_id), **outcome.body}
        if outcome.info.first_seq is not None:
            ack["firstSeq"] = outcome.info.first_seq
        await self._send_locked(wire.dumps(ack))

    async def _reply_error(
        self, exc: BaseException, command: str | None = None, command_id: Any = None
    ) -> None:
        status, payload = error_payload(exc, self.services.logger)
        frame: dict[str, Any] = {"type": "error", **_with_command(command), **_with_id(command_id)}
        frame["httpStatus"] = status
        frame["error"] = payload["error"]
        await self._send_locked(wire.dumps(frame))

    async def _reply_refusal(self, command: str, command_id: Any, refusal: AbortResult) -> None:
        body = refusal.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
        else:
            error = {"code": "refused", "message": "a server hook refused this command", "details": body}
        frame = {"type": "error", "command": command, **_with_id(command_id), "httpStatus": refusal.status}
        frame["error"] = error
        await self._send_locked(wire.dumps(frame))


def _with_id(command_id: Any) -> dict[str, Any]:
    return {} if command_id is None else {"id": command_id}


def _with_command(command: str | None) -> dict[str, Any]:
    return {} if command is None else {"command": command}
