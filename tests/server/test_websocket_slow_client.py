"""A client that stops reading its WebSocket is closed with 4008 after ``ws_send_timeout``, and loses
nothing: it can reconnect from the seq after its last one. Driven in process through the ASGI app with
trio's MockClock, so the timeout is checked to the (virtual) millisecond without waiting for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry
from helix.server import ServerLimits, create_agent_server

SEND_TIMEOUT = 8.0
FRAMES_READ = 5  # chunk frames the client takes before it stops reading


def websocket_scope(path: str, query: str = "") -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }


class StallingClient:
    """Takes ``FRAMES_READ`` chunk frames, then never finishes taking the next one."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.stalled_at = 0.0
        self.close: dict[str, Any] | None = None
        self.closed_at = 0.0
        self.closed = trio.Event()
        self._incoming_send, self._incoming = trio.open_memory_channel[dict[str, Any]](10)

    async def receive(self) -> dict[str, Any]:
        return await self._incoming.receive()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            frame = json.loads(message["text"])
            if "seq" in frame and len([f for f in self.frames if "seq" in f]) >= FRAMES_READ:
                self.stalled_at = trio.current_time()
                await trio.sleep_forever()  # the socket buffer is full: the send never completes
            self.frames.append(frame)
        elif message["type"] == "websocket.close":
            self.close = message
            self.closed_at = trio.current_time()
            self.closed.set()

    async def put(self, message: dict[str, Any]) -> None:
        await self._incoming_send.send(message)


# 0.01 s between model events keeps the send watcher busy; 1 s (two watch periods) lets it leave between
# frames, so the stalled frame is watched by a watcher started again for its group.
@pytest.mark.parametrize("model_delay", [0.01, 1.0])
async def test_a_client_that_stops_reading_is_closed_with_4008_and_loses_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, model_delay: float
):
    registry = AgentRegistry()
    registry.register(Agent(name="talker", system_prompt="Talk.", max_steps=2))
    server = create_agent_server(
        llm_adapter=lambda env, ctx: ScriptedAdapter([{"text": "word " * 40}], delay=model_delay),
        agents=registry,
        data_dir=tmp_path,
        limits=ServerLimits(ws_send_timeout=SEND_TIMEOUT),
    )
    client = StallingClient()
    async with server:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server, websocket_scope("/sessions/slow/ws"), client.receive, client.send)
            await client.put({"type": "websocket.connect"})
            await client.put({"type": "websocket.receive", "text": json.dumps({"type": "start",
                             "agentType": "talker", "message": "go", "id": 1})})
            with trio.fail_after(600):
                await client.closed.wait()
            await client.put({"type": "websocket.disconnect", "code": 4008})

        assert client.close is not None and client.close["code"] == 4008
        waited = client.closed_at - client.stalled_at
        assert SEND_TIMEOUT <= waited <= SEND_TIMEOUT * (1 + 1 / 16) + 0.05, waited
        chunks = [f for f in client.frames if "seq" in f]
        assert [c["seq"] for c in chunks] == list(range(1, FRAMES_READ + 1))

        # Nothing was lost: the run goes on to the end, and the rest is there from the next seq.
        await server.runtime.wait_idle("slow")
        history = (await server.runtime.history("slow", from_seq=1, limit=1000)).chunks
        assert [json.loads(c.json) for c in history][:FRAMES_READ] == chunks
        assert history[-1].type == "run_completed"
