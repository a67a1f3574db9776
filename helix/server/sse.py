"""``GET /sessions/{sid}/sse``: the session's chunks as Server-Sent Events.

Each chunk is ``id: <seq>`` and ``data: <chunk json>`` (the chunk's stored JSON, as on the WebSocket and
in ``/history``). Where it starts: ``Last-Event-ID: N`` (what a reconnecting ``EventSource`` sends) gives
N+1 and wins over ``?fromSeq=N`` (inclusive), which a reconnect repeats from the original URL; with
neither, the stream replays from the first chunk. While nothing else is sent, a ``: heartbeat`` comment
goes out every ``sse_heartbeat`` seconds. With ``?follow=false`` the stream ends after the terminal chunk
of the session's latest run (at once if that run already ended before the starting seq); otherwise it
follows the session until the client leaves.

Structure: the events are produced by a ``trio.as_safe_channel`` generator, whose nursery runs the
chunk pump next to the heartbeat timer. Quart-trio runs sending this body and waiting for the client's
disconnect in one nursery; whichever ends first cancels the other, which closes the subscription.
Memory per stream is bounded: the pump pulls one chunk at a time from the runtime (an unbuffered
channel), so a slow client only holds its position, never a queue.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Any

import trio
from quart.wrappers.response import ResponseBody
from quart_trio.wrappers import TrioResponse

from stores import StoredChunk

from ..chunks import TERMINAL_TYPES
from ..errors import InvalidRequestError
from ..runtime import AgentRuntime
from . import wire
from .call import SessionCall
from .errors import error_payload
from .requests import parse_count, parse_flag, query_value
from .services import ServerServices

LAST_EVENT_ID = "Last-Event-ID"


def start_seq(call: SessionCall) -> int:
    last_event_id = call.request.headers.get(LAST_EVENT_ID)
    if last_event_id is not None:
        try:
            return parse_count(last_event_id.strip(), LAST_EVENT_ID, default=0) + 1
        except InvalidRequestError:
            raise InvalidRequestError("Last-Event-ID must be the seq of a chunk (an integer)") from None
    return parse_count(query_value(call.args, "fromSeq"), "fromSeq", default=1)


async def sse(call: SessionCall) -> TrioResponse:
    from_seq = start_seq(call)
    follow = parse_flag(query_value(call.args, "follow"), "follow", default=True)
    body = _EventBody(call.services, call.session_id, from_seq, follow)
    response = TrioResponse(
        body,
        status=200,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        content_type="text/event-stream; charset=utf-8",
    )
    response.timeout = None  # a stream lasts as long as the client stays
    return response


class _EventBody(ResponseBody):
    def __init__(self, services: ServerServices, session_id: str, from_seq: int, follow: bool) -> None:
        self._events = _events(services, session_id, from_seq, follow)

    async def __aenter__(self) -> AsyncIterator[bytes]:
        return await self._events.__aenter__()

    async def __aexit__(
        self, exc_type: Any, exc_value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._events.__aexit__(exc_type, exc_value, tb)


@trio.as_safe_channel
async def _events(
    services: ServerServices, session_id: str, from_seq: int, follow: bool
) -> AsyncGenerator[bytes, None]:
    runtime, metrics = services.runtime, services.metrics
    yield b": connected\n\n"
    if not follow and await _nothing_left(runtime, session_id, from_seq):
        return
    failure: list[BaseException] = []
    with metrics.sse_connections.track_inprogress(), metrics.clock.listening(session_id):
        since = trio.current_time()
        async with runtime.subscribe(session_id, from_seq=from_seq) as chunks:
            sender, receiver = trio.open_memory_channel[StoredChunk](0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, chunks, sender, failure)
                async with receiver:
                    while True:
                        stored: StoredChunk | None = None
                        with trio.move_on_after(services.limits.sse_heartbeat):
                            try:
                                stored = await receiver.receive()
                            except trio.EndOfChannel:
                                break
                        if stored is None:
                            yield b": heartbeat\n\n"
                            continue
                        yield wire.sse_event(stored)
                        metrics.chunks_sent(session_id, [stored], since=since)
                        if not follow and stored.type in TERMINAL_TYPES:
                            if (await runtime.status(session_id)).run_id == stored.run_id:
                                break
                    nursery.cancel_scope.cancel()
    if failure:
        _, payload = error_payload(failure[0], services.logger)
        yield f"event: error\ndata: {wire.dumps(payload)}\n\n".encode()


async def _pump(
    chunks: AsyncIterator[StoredChunk],
    sender: trio.MemorySendChannel[StoredChunk],
    failure: list[BaseException],
) -> None:
    async with sender:
        try:
            async for stored in chunks:
                await sender.send(stored)
        except trio.Cancelled:
            raise
        except trio.BrokenResourceError:
            return  # the stream ended first
        except Exception as exc:  # the runtime is shutting down, a session file broke, ...
            failure.append(exc)


async def _nothing_left(runtime: AgentRuntime, session_id: str, from_seq: int) -> bool:
    """No chunk at or after ``from_seq`` and no run executing: a non-following stream ends at once."""
    page = await runtime.history(session_id, from_seq=from_seq, limit=1)
    if page.chunks:
        return False
    return not (await runtime.status(session_id)).is_executing
