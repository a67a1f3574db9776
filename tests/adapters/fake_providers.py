"""A scripted LLM provider on 127.0.0.1 that speaks OpenAI's and Anthropic's real streaming wire formats.

Start it in a test nursery, script the answers, point an SDK at it::

    provider = await nursery.start(serve_fake_provider)
    provider.script(openai_reply(text=["Hel", "lo"]))
    adapter = OpenAIAdapter(model="gpt-4o-mini", api_key="test", base_url=provider.openai_base_url)

Each request takes the next scripted :class:`Reply` and is recorded in ``provider.requests`` (method, path,
headers, JSON body). The formats follow the providers' published references:

- OpenAI Chat Completions streaming: ``data: {chat.completion.chunk}`` frames, tool calls as
  ``delta.tool_calls[]`` keyed by ``index`` (id and name in the first fragment, then ``function.arguments``
  pieces), a chunk with ``finish_reason``, with ``stream_options.include_usage`` a last chunk with
  ``choices: []`` and ``usage``, then ``data: [DONE]``.
- Anthropic Messages streaming: ``event: <type>`` / ``data: {...}`` frames: ``message_start``,
  ``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``,
  ``thinking_delta``, ``signature_delta``) / ``content_block_stop``, ``ping``, ``message_delta`` (stop reason,
  cumulative usage), ``message_stop``.

The server is trio and h11: HTTP/1.1 with keep-alive, chunked streaming bodies. A reply can end normally,
be ``cut`` (the socket closes in the middle of the chunked body) or ``hang`` (stay open until the client
disconnects; ``provider.disconnected`` is set then, at ``provider.disconnected_at`` in trio time).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import h11
import trio

Ending = Literal["complete", "cut", "hang"]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted HTTP answer: a JSON body, or SSE ``frames`` sent one write each."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    frames: tuple[bytes, ...] = ()
    ending: Ending = "complete"

    @property
    def streaming(self) -> bool:
        return bool(self.frames) or self.ending != "complete"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeProvider:
    """The server's handle: its URLs, the script of replies, and what it received."""

    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnected: trio.Event = field(default_factory=trio.Event)
    disconnected_at: float | None = None
    _replies: deque[Reply] = field(default_factory=deque)

    @property
    def openai_base_url(self) -> str:
        """The OpenAI SDK's ``base_url``: the API root with ``/v1``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic SDK's ``base_url``: the host root."""
        return self.url

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        self._replies.extend(replies)

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _read_request(conn, stream)
                if request is None:
                    return
                self.requests.append(request)
                reply = self._replies.popleft() if self._replies else _script_exhausted()
                if not await self._send(conn, stream, reply):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            await stream.aclose()

    async def _send(self, conn: h11.Connection, stream: trio.SocketStream, reply: Reply) -> bool:
        """Send ``reply``; False when the connection must close afterwards."""
        headers = list(reply.headers)
        if reply.streaming:
            headers += [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        else:
            headers += [("content-type", "application/json"), ("content-length", str(len(reply.body)))]
        await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)) or b"")
        if not reply.streaming:
            await stream.send_all(conn.send(h11.Data(data=reply.body)) or b"")
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            return True
        for frame in reply.frames:
            await stream.send_all(conn.send(h11.Data(data=frame)) or b"")
        if reply.ending == "cut":
            return False  # closing now leaves the chunked body unfinished: the client sees a dropped stream
        if reply.ending == "hang":
            await self._wait_for_disconnect(stream)
            return False
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return True

    async def _wait_for_disconnect(self, stream: trio.SocketStream) -> None:
        try:
            while await stream.receive_some():
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.disconnected_at = trio.current_time()
        self.disconnected.set()


async def _read_request(conn: h11.Connection, stream: trio.SocketStream) -> RecordedRequest | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some()
            conn.receive_data(data)  # b"" marks the end of the connection for h11
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return RecordedRequest(
                method=head.method.decode(),
                path=head.target.decode(),
                headers={name.decode().lower(): value.decode() for name, value in head.headers},
                body=json.loads(body) if body else None,
            )


def _script_exhausted() -> Reply:
    return json_reply(500, {"error": {"message": "fake provider: no reply scripted for this request"}})


async def serve_fake_provider(
    *, task_status: trio.TaskStatus[FakeProvider] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve a :class:`FakeProvider` on a free port of 127.0.0.1 until cancelled; use with
    ``nursery.start``, which returns the provider once it accepts connections."""
    provider = FakeProvider()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, provider._handle, 0, host="127.0.0.1"))
        host, port = listeners[0].socket.getsockname()[:2]
        provider.url = f"http://{host}:{port}"
        task_status.started(provider)


# --- replies --------------------------------------------------------------------------------------------


def json_reply(status: int, body: Any, *, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    return Reply(status=status, headers=tuple(headers), body=json.dumps(body).encode())


def openai_error(
    status: int, message: str, *, type: str, code: str | None = None, headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    """An OpenAI error answer: ``{"error": {"message", "type", "param", "code"}}``."""
    error = {"message": message, "type": type, "param": None, "code": code}
    return json_reply(status, {"error": error}, headers=headers)


def anthropic_error(
    status: int, message: str, *, type: str, headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    """An Anthropic error answer: ``{"type": "error", "error": {"type", "message"}}``."""
    return json_reply(status, {"type": "error", "error": {"type": type, "message": message}}, headers=headers)


# Retry quickly: both SDKs honour `retry-after-ms` before their own exponential backoff.
RETRY_NOW = (("retry-after-ms", "1"),)


@dataclass(frozen=True, kw_only=True)
class ToolUse:
    """A tool call to stream: its arguments JSON arrives in ``argument_pieces`` (joined, valid or not)."""

    id: str
    name: str
    argument_pieces: Sequence[str] = ()


def openai_stream(
    chunks: Iterable[dict[str, Any]], *, done: bool = True, ending: Ending = "complete"
) -> Reply:
    """Chat Completions SSE: one ``data:`` frame per chunk, then ``data: [DONE]``."""
    frames = [b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks]
    if done:
        frames.append(b"data: [DONE]\n\n")
    return Reply(frames=tuple(frames), ending=ending)


def openai_chunk(
    *,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` makes the usage-only chunk (``choices: []``)."""
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [],
    }
    if delta is not None:
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def openai_usage(
    prompt_tokens: int, completion_tokens: int, *, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_reply(
    *,
    text: Sequence[str] = (),
    reasoning: Sequence[str] = (),
    tool_calls: Sequence[ToolUse] = (),
    usage: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    ending: Ending = "complete",
) -> Reply:
    """A whole streamed answer as OpenAI sends it: the role chunk, reasoning (``reasoning_content``, as
    OpenAI-compatible servers send it), text pieces, then each tool call's fragments (the argument
    pieces of all calls interleaved, to exercise assembly by index), the finish chunk, the usage chunk
    and ``[DONE]``. ``ending="cut"`` drops the connection after the first half of the chunks; ``"hang"``
    sends that half and then waits for the client to go away."""
    chunks = [openai_chunk(delta={"role": "assistant", "content": ""}, model=model)]
    chunks += [openai_chunk(delta={"reasoning_content": piece}, model=model) for piece in reasoning]
    chunks += [openai_chunk(delta={"content": piece}, model=model) for piece in text]
    for index, call in enumerate(tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(openai_chunk(delta={"tool_calls": [head]}, model=model))
    longest = max((len(call.argument_pieces) for call in tool_calls), default=0)
    for position in range(longest):
        for index, call in enumerate(tool_calls):
            if position < len(call.argument_pieces):
                piece = {"index": index, "function": {"arguments": call.argument_pieces[position]}}
                chunks.append(openai_chunk(delta={"tool_calls": [piece]}, model=model))
    reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    chunks.append(openai_chunk(delta={}, finish_reason=reason, model=model))
    chunks.append(openai_chunk(usage=usage or openai_usage(10, 5), model=model))
    if ending != "complete":
        return openai_stream(chunks[: max(1, len(chunks) // 2)], done=False, ending=ending)
    return openai_stream(chunks)


def anthropic_stream(events: Iterable[dict[str, Any]], *, ending: Ending = "complete") -> Reply:
    """Messages SSE: ``event: <type>`` and ``data: <json>`` per event."""
    frames = [f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events]
    return Reply(frames=tuple(frames), ending=ending)


def anthropic_reply(
    *,
    text: Sequence[str] = (),
    thinking: Sequence[str] = (),
    tool_uses: Sequence[ToolUse] = (),
    input_tokens: int = 10,
    output_tokens: Sequence[int] = (5,),
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    stop_reason: str | None = None,
    model: str = "claude-fake-1-20250101",
    ending: Ending = "complete",
) -> Reply:
    """A whole streamed message as Anthropic sends it: ``message_start`` (input usage), a thinking block,
    a text block, one ``tool_use`` block per call with its ``input_json_delta`` pieces, then one
    ``message_delta`` per entry of ``output_tokens`` (cumulative counts, as the API reports them) and
    ``message_stop``. ``ending="cut"`` drops the connection after the first half of the events; ``"hang"``
    sends that half and then waits for the client to go away."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": cache_creation_input_tokens,
                    "cache_read_input_tokens": cache_read_input_tokens,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "ping"},
    ]
    index = 0
    if thinking:
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            }
        )
        for piece in thinking:
            delta = {"type": "thinking_delta", "thinking": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        signature = {
            "type": "signature_delta",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk",
        }
        events.append({"type": "content_block_delta", "index": index, "delta": signature})
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    if text:
        events.append(
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
        )
        for piece in text:
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                }
            )
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    for call in tool_uses:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for piece in call.argument_pieces:
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    reason = stop_reason or ("tool_use" if tool_uses else "end_turn")
    for count in output_tokens:
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": count},
            }
        )
    events.append({"type": "message_stop"})
    if ending != "complete":
        return anthropic_stream(events[: max(1, len(events) // 2)], ending=ending)
    return anthropic_stream(events)
