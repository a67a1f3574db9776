"""Request bodies are read (or read and thrown away) before the app answers.

Hypercorn reuses a keep-alive connection only once the request body has been fully received; an app that
answers a POST without reading its body leaves the connection stalled or closed. So every HTTP request's
body is read here, at the ASGI level, before any route, hook or error handler runs:

- a body within ``max_body_bytes`` is buffered and replayed to the app as one ``http.request`` message;
- a larger one (judged from ``Content-Length`` before reading when it is sent, else while reading a
  chunked body) is read and discarded up to ``discard_body_bytes`` and answered 413 on a connection that
  stays usable; past that, the 413 says ``Connection: close``;
- a body that does not arrive within ``body_timeout`` is answered 408 with ``Connection: close``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import trio

from .errors import PayloadTooLargeError, RequestTimeoutError, error_payload
from .services import ServerLimits
from .wire import dumps

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class BodyRead:
    body: bytes = b""
    disconnected: bool = False
    too_large: bool = False
    timed_out: bool = False
    complete: bool = True
    """The whole body was received (the connection can serve another request)."""


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(scope: Scope, receive: Receive, limits: ServerLimits) -> BodyRead:
    declared = declared_length(scope)
    too_large = declared is not None and declared > limits.max_body_bytes
    parts: list[bytes] = []
    kept = seen = 0
    with trio.move_on_after(limits.body_timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return BodyRead(disconnected=True)
            if message["type"] != "http.request":
                continue
            data = bytes(message.get("body", b""))
            seen += len(data)
            if not too_large:
                kept += len(data)
                if kept > limits.max_body_bytes:
                    too_large = True
                    parts.clear()
                else:
                    parts.append(data)
            if not message.get("more_body", False):
                return BodyRead(body=b"".join(parts), too_large=too_large)
            if too_large and seen > limits.discard_body_bytes:
                return BodyRead(too_large=True, complete=False)
    return BodyRead(timed_out=True, complete=False)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over first, then passes on (to see disconnects)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive_again() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return receive_again


async def answer_early(send: Send, read: BodyRead, limits: ServerLimits) -> None:
    """The 413 or 408 for a body that was refused at the ASGI level."""
    error: Exception = (
        PayloadTooLargeError(limits.max_body_bytes)
        if read.too_large
        else RequestTimeoutError(limits.body_timeout)
    )
    status, payload = error_payload(error)
    body = dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if not read.complete:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
