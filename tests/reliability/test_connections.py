"""HTTP connections are released: a server that never closes a finished connection can be exhausted of
file descriptors by clients that just stay connected, and hangs clients (health checkers such as Icinga's
``check_http``) that send ``Connection: close`` and read to the end.

Hypercorn closes such a connection (or arms its keep-alive idle timer) inside the app's last ``send`` of
the response; quart-trio cancels that call as soon as it sees the ``http.disconnect`` Hypercorn reports
on the way, so until the server shielded that last send, these connections stayed open until the client
left (pgjones/hypercorn#330 reports the symptom). Each case runs a few times: the cancellation was a race.
"""

from __future__ import annotations

import pytest
import trio

from .process import Served


async def _closed_within(port: int, request: bytes, seconds: float) -> bool:
    """Send ``request``; whether the server closes the connection within ``seconds`` of sending it."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        with trio.move_on_after(seconds):
            while await stream.receive_some(65536):
                pass
            return True
    return False


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/healthz", b""),
        ("GET", "/sessions/nobody/status", b""),
        ("GET", "/no/such/route", b""),
        ("POST", "/sessions/nobody/interrupt", b'{"reason": "test"}'),
        ("POST", "/sessions/nobody/start", b'{"not json'),
    ],
)
async def test_the_server_closes_the_connection_after_answering_connection_close(
    plain: Served, method: str, path: str, body: bytes
):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    for _ in range(5):
        assert await _closed_within(plain.port, head.encode() + body, 3.0)


async def test_idle_keep_alive_connections_are_closed_after_the_keep_alive_timeout(plain: Served):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    closed: list[bool] = []

    async def one() -> None:
        closed.append(await _closed_within(plain.port, request, 5.0 + 3.0))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert closed == [True] * 5
