"""Time travel: resuming from any checkpoint replays from exactly that point; old branches stay readable."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import ScriptedAdapter
from helix.runtime import AgentRuntime

from .support import make_registry, tool_loop_script

_session_numbers = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=4))
async def test_resuming_from_random_checkpoints_keeps_each_prefix_and_every_branch(tmp_path, picks):
    session = f"tt-{next(_session_numbers)}"
    script = tool_loop_script(3)
    runtime = AgentRuntime(
        llm_adapter=lambda env, ctx: ScriptedAdapter(script),
        agents=make_registry(),
        data_dir=tmp_path / "data",
    )
    async with runtime:
        await (await runtime.start(session, agent_type="worker", message="go")).result()
        branches: dict[str, list] = {}
        for pick in picks:
            checkpoints = await runtime.checkpoints(session)
            for checkpoint in checkpoints:
                branches.setdefault(
                    checkpoint.id, await runtime.messages(session, checkpoint_id=checkpoint.id)
                )
            chosen = checkpoints[pick % len(checkpoints)]
            prefix = branches[chosen.id]
            resumed = await runtime.resume(session, mode="from_checkpoint", checkpoint_id=chosen.id)
            await resumed.result()
            conversation = await runtime.messages(session)
            assert conversation[: len(prefix)] == prefix
            # The script replays from the restored point: the next assistant turn is the one that followed
            # this many assistant turns the first time.
            turns = sum(1 for m in prefix if m.role == "assistant")
            expected = script[min(turns, len(script) - 1)]["text"]
            assert conversation[len(prefix)].content == expected
        for checkpoint_id, messages in branches.items():
            assert await runtime.messages(session, checkpoint_id=checkpoint_id) == messages
