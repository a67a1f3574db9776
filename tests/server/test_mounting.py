"""The server mounted under a path prefix (ASGI ``root_path``, here from ``hypercorn --root-path``)."""

from __future__ import annotations

import json

import httpx
from trio_websocket import open_websocket_url

from helix.client import AgentClient

from .conftest import ServerProcess
from .support import path, start, wait_done


async def test_every_kind_of_route_works_under_a_prefix(new_server: ServerProcess, sid: str):
    new_server.root_path = "/api/v1"
    new_server.start()  # waits for {root}/healthz
    async with httpx.AsyncClient(base_url=new_server.base_url) as http:
        await start(http, f"{sid}/x")
        status = await wait_done(http, f"{sid}/x")
        assert status["sessionId"] == f"{sid}/x" and status["status"] == "completed"
        assert (await http.get(path(sid, "nope"))).json()["error"]["code"] == "not_found"
        async with open_websocket_url(f"{new_server.ws_base}{path(sid + '/x', 'ws')}?fromSeq=1") as ws:
            assert json.loads(await ws.get_message())["type"] == "run_started"
    async with AgentClient(new_server.base_url) as client:
        handle = await client.start(sid, agent_type="worker")
        assert (await handle.result()).status == "completed"
