"""The server object is also the in-process API: no HTTP needed to embed it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from adapters import ScriptedAdapter
from helix.server import ServerLimits, create_agent_server

from .served_app import SCRIPTS, make_registry


def build(data_dir: Path):
    return create_agent_server(
        llm_adapter=lambda env, ctx: ScriptedAdapter(SCRIPTS[ctx.agent_type][0]),
        agents=make_registry(),
        data_dir=data_dir,
    )


async def test_start_and_read_without_http(tmp_path: Path):
    server = build(tmp_path)
    with trio.fail_after(30):
        async with server:
            handle = await server.start("embedded", agent_type="worker", message="hi")
            result = await handle.result()
            assert result.status == "completed" and result.output == "All done."
            assert (await server.status("embedded")).step_count == 3
            again = server.get_handle("embedded", handle.run_id)
            assert (await again.result()).run_id == handle.run_id


def test_bad_configuration_fails_when_the_server_is_built(tmp_path: Path):
    with pytest.raises(ValueError, match="endpoint path"):
        create_agent_server(
            llm_adapter=lambda env, ctx: ScriptedAdapter([{"text": "x"}]),
            agents=make_registry(),
            endpoints={"no-slash": lambda request, ctx: None},
            data_dir=tmp_path,
        )
    with pytest.raises(ValueError, match="max_body_bytes"):
        ServerLimits(max_body_bytes=0)
