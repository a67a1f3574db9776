"""``helix.client``: the Python client against a real server, including a stream that outlives a server
restart."""

from __future__ import annotations

import signal
from contextlib import aclosing

import pytest
import trio

from helix.client import AgentClient, AgentServerError
from helix.errors import (
    AgentNotFoundError,
    CheckpointNotFoundError,
    InvalidRequestError,
    InvalidRunStateError,
)

from .conftest import ServerProcess


async def test_start_stream_result_and_time_travel(plain_server: ServerProcess, sid: str):
    async with AgentClient(plain_server.base_url) as client:
        handle = await client.start(sid, agent_type="worker", message="hello")
        assert handle.first_seq == 1 and handle.session_id == sid
        chunks = [chunk async for chunk in handle.stream()]
        assert chunks[0]["type"] == "run_started" and chunks[-1]["type"] == "run_completed"
        assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
        result = await handle.result()
        assert (
            result.status == "completed" and result.output == "All done." and result.run_id == handle.run_id
        )
        assert await handle.get_state() == {"notes": ["n0", "n1"]}

        checkpoints = await handle.checkpoints()
        branch = await handle.resume(mode="from_checkpoint", checkpoint_id=checkpoints[0]["id"])
        assert branch.run_id != handle.run_id
        branched = [chunk async for chunk in branch.stream()]
        assert branched[0]["type"] == "run_resumed" and branched[0]["checkpointId"] == checkpoints[0]["id"]
        assert (await branch.result()).status == "completed"
        assert await branch.get_state() == {
            "notes": ["n0", "n1"]
        }  # n0 restored, n1 noted again on the branch

        follow_up = await branch.send("one more thing")
        assert (await follow_up.result()).status == "completed"
        user_turns = [m["content"] for m in await client.messages(sid) if m["role"] == "user"]
        assert user_turns[-1] == "one more thing"


async def test_interrupt_can_resume_and_errors_map_to_helix_errors(plain_server: ServerProcess, sid: str):
    async with AgentClient(plain_server.base_url) as client:
        with pytest.raises(AgentNotFoundError) as missing:
            await client.start(sid, agent_type="ghost")
        assert "slow" in missing.value.available_types
        with pytest.raises(InvalidRunStateError):
            await client.interrupt(sid)

        handle = await client.start(sid, agent_type="slow")
        async with aclosing(handle.stream()) as chunks:
            async for chunk in chunks:
                if chunk["type"] == "checkpoint":
                    break
        info = await handle.interrupt("enough")
        assert info.status == "interrupted" and info.run_id == handle.run_id
        result = await handle.result()
        assert result.status == "interrupted" and result.reason == "enough"
        assert await handle.can_resume() == (True, None)
        with pytest.raises(CheckpointNotFoundError):
            await handle.resume(mode="from_checkpoint", checkpoint_id="cpv1-missing")
        resumed = await handle.resume()
        await resumed.abort("done")
        assert (await resumed.result()).status == "failed"
        can, why = await resumed.can_resume()
        assert can is False and why


async def test_a_handle_from_get_handle_follows_the_latest_run(plain_server: ServerProcess, sid: str):
    async with AgentClient(plain_server.base_url) as client:
        started = await client.start(sid, agent_type="worker")
        await started.result()
        handle = client.get_handle(sid)
        assert (await handle.result()).status == "completed"
        assert handle.run_id == started.run_id


async def test_stream_reconnects_across_a_server_restart_without_gap_or_duplicate(
    new_server: ServerProcess, sid: str
):
    new_server.start()
    port = new_server.port
    async with AgentClient(new_server.base_url, reconnect_timeout=30) as client:
        handle = await client.start(sid, agent_type="slow")
        seen: list[dict] = []
        async with aclosing(handle.stream()) as chunks:
            async for chunk in chunks:
                seen.append(chunk)
                if len(seen) == 30:
                    # SIGKILL mid-run; a new process on the same port recovers the session on first use
                    await trio.to_thread.run_sync(new_server.stop, signal.SIGKILL)
                    await trio.to_thread.run_sync(lambda: new_server.start(port=port))
        assert [c["seq"] for c in seen] == list(range(1, len(seen) + 1))
        assert seen[-1]["type"] == "run_interrupted" and seen[-1]["reason"] == "crash"
        history = (await client.history(sid))["chunks"]
        assert history[: len(seen)] == seen
        assert (await handle.can_resume())[0] is True


async def test_graceful_shutdown_interrupts_running_runs_and_they_resume(new_server: ServerProcess, sid: str):
    new_server.start()
    async with AgentClient(new_server.base_url) as client:
        handle = await client.start(sid, agent_type="slow")
        async with aclosing(handle.stream()) as chunks:
            async for chunk in chunks:
                if chunk["type"] == "checkpoint":
                    break
    assert await trio.to_thread.run_sync(new_server.stop, signal.SIGTERM) == 0
    assert "Traceback" not in new_server.log()
    new_server.start()
    async with AgentClient(new_server.base_url) as client:
        status = await client.status(sid)
        assert status["status"] == "interrupted" and status["canResume"] is True
        terminal = (await client.history(sid))["chunks"][-1]
        assert terminal["type"] == "run_interrupted" and terminal["reason"] != "crash"
        resumed = await client.get_handle(sid).resume()
        await resumed.abort()


async def test_a_refused_websocket_handshake_raises_the_mapped_error(plain_server: ServerProcess):
    async with AgentClient(plain_server.base_url) as client:
        with pytest.raises(InvalidRequestError, match="session id"):
            async with aclosing(client.subscribe("bad\x00id")) as chunks:
                async for _ in chunks:
                    pass


async def test_an_unauthorized_client_gets_agent_server_error(hooks_server: ServerProcess, sid: str):
    async with AgentClient(hooks_server.base_url) as client:
        with pytest.raises(AgentServerError) as refused:
            await client.start(sid, agent_type="worker")
        assert refused.value.http_status == 401 and refused.value.error_code == "unauthorized"
    async with AgentClient(hooks_server.base_url, headers={"Authorization": "Bearer token-alice"}) as client:
        handle = await client.start(sid, agent_type="worker")
        assert (await handle.result()).status == "completed"
