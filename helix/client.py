"""A Python client for a helix server: HTTP (httpx) for commands and reads, a WebSocket (trio-websocket)
for streams.

::

    async with AgentClient("http://127.0.0.1:8000") as client:
        handle = await client.start("session-1", agent_type="support", message="Where is my order?")
        async for chunk in handle.stream():          # reconnects from the last seq on its own
            print(chunk["seq"], chunk["type"])
        print(await handle.result())
        middle = (await handle.checkpoints())[0]["id"]
        branch = await handle.resume(mode="from_checkpoint", checkpoint_id=middle)

The client owns a nursery (for the WebSocket reader tasks), so use it as an async context manager.
Errors come back as the same classes the in-process API raises (:class:`~helix.errors.AgentNotFoundError`,
:class:`~helix.errors.InvalidRunStateError`, ...), or :class:`AgentServerError` for other answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import trio
import trio_websocket

from .chunks import TERMINAL_TYPES
from .errors import (
    AgentNotFoundError,
    CheckpointNotFoundError,
    HelixError,
    InvalidRequestError,
    InvalidRunStateError,
)
from .handle import RunResult
from .status import RunInfo

__all__ = ["AgentClient", "AgentExecutionHandle", "AgentServerError"]

FIRST_SEQ_HEADER = "Helix-First-Seq"


class AgentServerError(HelixError):
    """A server answer that maps to no in-process error class: ``error_code`` and ``http_status`` say
    which (``unauthorized``/401, ``hook_failed``/500, ``payload_too_large``/413, ...)."""

    code = "server_error"

    def __init__(
        self, message: str, *, error_code: str, http_status: int, details: Any = None, body: Any = None
    ):
        super().__init__(message, details=details)
        self.error_code = error_code
        self.http_status = http_status
        self.body = body


def error_from_answer(status: int, payload: Any, *, agent_type: str | None = None) -> HelixError:
    """The exception for an error answer (``{"error": {"code", "message", "details"?}}`` or anything
    a hook sent instead)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return AgentServerError(
            f"the server answered {status}", error_code="http_error", http_status=status, body=payload
        )
    code, message, details = str(error.get("code")), str(error.get("message", "")), error.get("details")
    exc: HelixError
    if code == "invalid_request":
        exc = InvalidRequestError(message, details=details)
    elif code == "agent_not_found":
        exc = AgentNotFoundError(agent_type or "", list(error.get("availableTypes", [])))
    elif code == "checkpoint_not_found":
        exc = CheckpointNotFoundError(
            str((details or {}).get("checkpointId", "")) if isinstance(details, dict) else ""
        )
    elif code == "invalid_run_state":
        exc = InvalidRunStateError(message, status="unknown")
    else:
        return AgentServerError(message, error_code=code, http_status=status, details=details, body=payload)
    exc.message = message
    exc.args = (message,)
    return exc


class AgentClient:
    """HTTP + WebSocket client. ``headers`` go with every request and WebSocket handshake (e.g.
    ``{"Authorization": "Bearer ..."}``). A stream that loses its WebSocket reconnects from the seq after
    the last chunk it yielded, backing off up to ``reconnect_timeout`` seconds before it gives up."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        reconnect_timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self._http: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> AgentClient:
        stack = AsyncExitStack()
        self._http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout)
        )
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()  # WebSocket readers of streams nobody closed
        if stack is not None:
            await stack.__aexit__(*exc_info)
        self._http = self._nursery = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use the client as `async with AgentClient(...) as client:`")
        return self._http

    # -- HTTP ------------------------------------------------------------------------------------

    def session_path(self, session_id: str, route: str) -> str:
        # Dots are escaped too, so that "." or ".." stays a session id instead of a path step.
        return f"/sessions/{quote(session_id, safe='').replace('.', '%2E')}/{route}"

    async def _request(
        self, method: str, session_id: str, route: str, *, agent_type: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        response = await self.http.request(method, self.session_path(session_id, route), **kwargs)
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = response.text
            raise error_from_answer(response.status_code, payload, agent_type=agent_type)
        return response

    async def _command(
        self, session_id: str, route: str, body: dict[str, Any], agent_type: str | None = None
    ) -> Any:
        response = await self._request("POST", session_id, route, json=body, agent_type=agent_type)
        answer = response.json()
        first_seq = response.headers.get(FIRST_SEQ_HEADER)
        return answer, int(first_seq) if first_seq and first_seq.isdigit() else None

    async def start(
        self,
        session_id: str,
        *,
        agent_type: str | None = None,
        message: str | None = None,
        state: dict[str, Any] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        user_id: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> AgentExecutionHandle:
        """Start a run; ``agent_type`` may be left out of a follow-up (the session's latest is used)."""
        run_input: dict[str, Any] = {}
        if message is not None:
            run_input["message"] = message
        if state is not None:
            run_input["state"] = state
        if messages:
            run_input["messages"] = [dict(m) for m in messages]
        body: dict[str, Any] = {"input": run_input}
        for key, value in (("agentType", agent_type), ("metadata", metadata), ("userId", user_id)):
            if value is not None:
                body[key] = value
        if tags is not None:
            body["tags"] = list(tags)
        answer, first_seq = await self._command(session_id, "start", body, agent_type)
        return self._handle(answer, first_seq, agent_type)

    async def resume(
        self,
        session_id: str,
        *,
        mode: str = "continue",
        checkpoint_id: str | None = None,
        message: str | None = None,
        modify_state: dict[str, Any] | None = None,
        append_messages: Sequence[Mapping[str, Any]] | None = None,
        agent_type: str | None = None,
    ) -> AgentExecutionHandle:
        """Resume: ``continue``, ``with_message`` (implied by ``message``), or time travel with
        ``from_checkpoint`` / ``branch`` and ``checkpoint_id``."""
        options: dict[str, Any] = {"mode": mode}
        for key, value in (
            ("checkpointId", checkpoint_id),
            ("message", message),
            ("modifyState", modify_state),
        ):
            if value is not None:
                options[key] = value
        if append_messages:
            options["appendMessages"] = [dict(m) for m in append_messages]
        body: dict[str, Any] = {"options": options}
        if agent_type is not None:
            body["agentType"] = agent_type
        answer, first_seq = await self._command(session_id, "resume", body, agent_type)
        return self._handle(answer, first_seq, agent_type)

    async def retry(
        self,
        session_id: str,
        *,
        mode: str = "from_checkpoint",
        message: str | None = None,
        agent_type: str | None = None,
    ) -> AgentExecutionHandle:
        options: dict[str, Any] = {"mode": mode}
        if message is not None:
            options["message"] = message
        body: dict[str, Any] = {"options": options}
        if agent_type is not None:
            body["agentType"] = agent_type
        answer, first_seq = await self._command(session_id, "retry", body, agent_type)
        return self._handle(answer, first_seq, agent_type)

    async def interrupt(self, session_id: str, reason: str | None = None) -> RunInfo:
        """Soft stop; answers once the run recorded its end. :class:`InvalidRunStateError` if nothing runs."""
        answer, _ = await self._command(session_id, "interrupt", {} if reason is None else {"reason": reason})
        return RunInfo(session_id=answer["sessionId"], run_id=answer["runId"], status=answer["status"])

    async def abort(self, session_id: str, reason: str | None = None) -> RunInfo:
        answer, _ = await self._command(session_id, "abort", {} if reason is None else {"reason": reason})
        return RunInfo(session_id=answer["sessionId"], run_id=answer["runId"], status=answer["status"])

    def _handle(
        self, answer: dict[str, Any], first_seq: int | None, agent_type: str | None
    ) -> AgentExecutionHandle:
        return AgentExecutionHandle(
            self,
            answer["sessionId"],
            run_id=answer["runId"],
            stream_id=answer.get("streamId"),
            first_seq=first_seq,
            agent_type=agent_type,
        )

    def get_handle(self, session_id: str, run_id: str | None = None) -> AgentExecutionHandle:
        """A handle on a run of the session; without ``run_id``, its latest run (looked up on first use)."""
        return AgentExecutionHandle(self, session_id, run_id=run_id)

    async def _get(self, session_id: str, route: str, **params: Any) -> Any:
        query = {key: value for key, value in params.items() if value is not None}
        return (await self._request("GET", session_id, route, params=query)).json()

    async def status(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(session_id, "status")
        return result

    async def history(
        self, session_id: str, *, from_seq: int = 1, limit: int | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(session_id, "history", fromSeq=from_seq, limit=limit)
        return result

    async def messages(self, session_id: str, *, checkpoint_id: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._get(session_id, "messages", checkpointId=checkpoint_id))[
            "messages"
        ]
        return result

    async def checkpoints(self, session_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._get(session_id, "checkpoints"))["checkpoints"]
        return result

    async def usage(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(session_id, "usage")
        return result

    async def snapshot(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(session_id, "snapshot")
        return result

    # -- WebSocket -------------------------------------------------------------------------------

    def websocket_url(self, session_id: str, from_seq: int) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = f"{parts.path}{self.session_path(session_id, 'ws')}"
        return urlunsplit((scheme, parts.netloc, path, f"fromSeq={from_seq}", ""))

    async def subscribe(self, session_id: str, *, from_seq: int = 1) -> AsyncGenerator[dict[str, Any], None]:
        """Every chunk of the session from ``from_seq`` on, replayed then live, without end; reconnects
        from the seq after the last chunk yielded. Close it with ``contextlib.aclosing`` or by breaking
        out of ``async for`` inside ``aclosing``."""
        if self._nursery is None:
            raise RuntimeError("use the client as `async with AgentClient(...) as client:`")
        nursery = self._nursery
        next_seq = max(from_seq, 1)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        failing_since: float | None = None
        delay = 0.05
        while True:
            connection: trio_websocket.WebSocketConnection | None = None
            try:
                with trio.fail_after(self.timeout):
                    connection = await _start_unwrapped(
                        nursery, _host_connection, self.websocket_url(session_id, next_seq), headers
                    )
                while True:
                    frame = json.loads(await connection.get_message())
                    if not isinstance(frame, dict) or "seq" not in frame:
                        continue  # an ack or error frame: not a chunk
                    if frame["seq"] < next_seq:
                        continue
                    next_seq = frame["seq"] + 1
                    failing_since, delay = None, 0.05
                    yield frame
            except trio_websocket.ConnectionRejected as exc:
                if 400 <= exc.status_code < 500:
                    raise _rejection(exc) from None
                failing_since = self._check_give_up(failing_since, exc)
            except (
                trio_websocket.ConnectionClosed,
                trio_websocket.HandshakeError,
                OSError,
                trio.TooSlowError,
            ) as exc:
                failing_since = self._check_give_up(failing_since, exc)
            finally:
                if connection is not None:
                    with trio.move_on_after(1.0) as cleanup:
                        cleanup.shield = True
                        await connection.aclose()
            await trio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _check_give_up(self, failing_since: float | None, exc: BaseException) -> float:
        now = trio.current_time()
        if failing_since is None:
            return now
        if now - failing_since > self.reconnect_timeout:
            raise ConnectionError(
                f"could not reconnect within {self.reconnect_timeout:g} s: {exc!r}"
            ) from exc
        return failing_since


async def _host_connection(
    url: str,
    headers: list[tuple[bytes, bytes]],
    *,
    task_status: trio.TaskStatus[trio_websocket.WebSocketConnection] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Open a WebSocket whose reader task lives in a nursery of its own, inside the client's.

    trio-websocket raises a refused handshake (and some reader failures) inside the reader's nursery; here
    that nursery is this task's, so a failure before the connection is handed over reaches the caller of
    ``nursery.start`` and one after it ends only this connection (its reader sees ``ConnectionClosed``).
    """
    started = False
    try:
        async with trio.open_nursery() as nursery:
            connection = await trio_websocket.connect_websocket_url(
                nursery, url, extra_headers=headers, message_queue_size=4
            )
            started = True
            task_status.started(connection)
    except Exception as exc:
        if not started:
            raise _leaf(exc) from None


async def _start_unwrapped(nursery: trio.Nursery, fn: Any, *args: Any) -> Any:
    try:
        return await nursery.start(fn, *args)
    except BaseExceptionGroup as group:
        raise _leaf(group) from None


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _rejection(exc: trio_websocket.ConnectionRejected) -> HelixError:
    try:
        payload = json.loads(exc.body or b"")
    except ValueError:
        payload = None
    return error_from_answer(exc.status_code, payload)


class AgentExecutionHandle:
    """A run of a session, over HTTP and WebSocket; the same methods as the in-process
    :class:`helix.handle.AgentExecutionHandle` (reads answer the wire's camelCase dicts)."""

    def __init__(
        self,
        client: AgentClient,
        session_id: str,
        *,
        run_id: str | None = None,
        stream_id: str | None = None,
        first_seq: int | None = None,
        agent_type: str | None = None,
    ) -> None:
        self._client = client
        self.session_id = session_id
        self.run_id = run_id
        self.stream_id = stream_id or run_id
        self.first_seq = first_seq
        self.agent_type = agent_type

    async def _run_id(self) -> str:
        if self.run_id is None:
            status = await self._client.status(self.session_id)
            if "runId" not in status:
                raise InvalidRunStateError("this session has no run yet; start one", status=status["status"])
            self.run_id = self.stream_id = status["runId"]
        return self.run_id

    async def stream(self, from_seq: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """This run's chunks (from its first, or from ``from_seq``), ending after its terminal chunk;
        reconnects on its own."""
        run_id = await self._run_id()
        start = from_seq if from_seq is not None else (self.first_seq or 1)
        async with aclosing(self._client.subscribe(self.session_id, from_seq=start)) as chunks:
            async for chunk in chunks:
                if chunk.get("runId") != run_id:
                    continue
                yield chunk
                if chunk.get("type") in TERMINAL_TYPES:
                    return

    async def result(self) -> RunResult:
        """Wait for the run's end: ``completed`` (with ``output``), ``failed`` (``error``) or
        ``interrupted`` (``reason``)."""
        async with aclosing(self.stream()) as chunks:
            async for chunk in chunks:
                if chunk.get("type") in TERMINAL_TYPES:
                    return RunResult.from_terminal_chunk(chunk)
        raise ConnectionError("the stream ended before the run did")  # pragma: no cover

    async def interrupt(self, reason: str | None = None) -> RunInfo:
        return await self._client.interrupt(self.session_id, reason)

    async def abort(self, reason: str | None = None) -> RunInfo:
        return await self._client.abort(self.session_id, reason)

    async def can_resume(self) -> tuple[bool, str | None]:
        """``(True, None)`` or ``(False, why)``, for the session's latest run."""
        status = await self._client.status(self.session_id)
        return bool(status["canResume"]), status.get("resumeBlockedReason")

    async def resume(
        self,
        *,
        mode: str = "continue",
        checkpoint_id: str | None = None,
        message: str | None = None,
        modify_state: dict[str, Any] | None = None,
        append_messages: Sequence[Mapping[str, Any]] | None = None,
        agent_type: str | None = None,
    ) -> AgentExecutionHandle:
        return await self._client.resume(
            self.session_id,
            mode=mode,
            checkpoint_id=checkpoint_id,
            message=message,
            modify_state=modify_state,
            append_messages=append_messages,
            agent_type=agent_type or self.agent_type,
        )

    async def retry(
        self, *, mode: str = "from_checkpoint", message: str | None = None
    ) -> AgentExecutionHandle:
        return await self._client.retry(
            self.session_id, mode=mode, message=message, agent_type=self.agent_type
        )

    async def send(self, message: str) -> AgentExecutionHandle:
        """A follow-up run with a new user message, on the session's agent."""
        return await self._client.start(self.session_id, agent_type=self.agent_type, message=message)

    async def get_state(self) -> Any:
        return (await self._client.snapshot(self.session_id))["state"]

    async def checkpoints(self) -> list[dict[str, Any]]:
        """The session's checkpoints, oldest first: ``{id, runId, step, parentId, createdAt, status}``."""
        return await self._client.checkpoints(self.session_id)

    def __repr__(self) -> str:
        return f"AgentExecutionHandle(session_id={self.session_id!r}, run_id={self.run_id!r})"
