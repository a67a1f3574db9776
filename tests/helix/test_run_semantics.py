"""Every row of DESIGN §5's run-semantics table, in process (no HTTP)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest
import trio
import trio.testing

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry, InvalidRequestError, InvalidRunStateError, LLMProviderError
from helix.llm import StepRequest
from stores import SessionStore

from .support import collect, lookup, make_registry, remember, tool_loop_script, types_of


def terminal_chunks(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in chunks if c["type"] in {"run_completed", "run_failed", "run_interrupted"}]


async def test_start_streams_the_documented_chunk_sequence_and_completes(open_runtime):
    async with open_runtime(tool_loop_script(1, final="Done.")) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="Check item 0")
        chunks = await collect(handle)
        result = await handle.result()
    kinds = types_of(chunks)
    assert kinds[0] == "run_started" and kinds[-1] == "run_completed"
    assert kinds.count("step_started") == 2 and kinds.count("checkpoint") == 2
    for expected in ("text_delta", "tool_call_start", "tool_call_delta", "tool_call_end", "tool_result"):
        assert expected in kinds
    assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(isinstance(c["ts"], int) and c["runId"] == handle.run_id for c in chunks)
    assert (
        "".join(c["delta"] for c in chunks if c["type"] == "text_delta") == "Step 0: looking up item 0.Done."
    )
    tool_result = next(c for c in chunks if c["type"] == "tool_result")
    assert tool_result["result"] == "item-0: 3 in stock" and tool_result["isError"] is False
    assert result.status == "completed" and result.output == "Done."


async def test_messages_form_the_conversation_with_tool_results_after_their_turn(open_runtime):
    async with open_runtime(tool_loop_script(1)) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="hi")
        await handle.result()
        messages = await runtime.messages("s1")
        status = await runtime.status("s1")
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[2].tool_call_id == messages[1].tool_calls[0].id
    assert status.status == "completed" and status.step_count == 2 and not status.is_executing


async def test_follow_up_start_continues_the_conversation(open_runtime):
    async with open_runtime([{"text": "First answer."}]) as runtime:
        await (await runtime.start("s1", agent_type="worker", message="one")).result()
        second = await runtime.start("s1", agent_type="worker", message="two")
        await second.result()
        messages = await runtime.messages("s1")
    assert [(m.role, m.content) for m in messages] == [
        ("user", "one"),
        ("assistant", "First answer."),
        ("user", "two"),
        ("assistant", "First answer."),
    ]


async def _act_on_the_failed_end(runtime, session_id: str) -> None:
    status = await runtime.status(session_id)
    assert (status.status, status.is_executing, status.can_resume) == ("failed", False, True)
    with pytest.raises(InvalidRunStateError, match="nothing is running"):
        await runtime.interrupt(session_id)


@pytest.mark.parametrize("learns_of_the_end", ["result()", "a listener"])
async def test_a_run_is_over_for_every_reader_once_its_end_reaches_a_client(open_runtime, learns_of_the_end):
    # The terminal chunk reaches listeners as it commits, while the run's task is still wrapping up, and
    # trio picks the order of those wake-ups at random: check many runs, each acted on straight away
    # (status, interrupt, then retry) by a client that learnt of the end through result() or by reading
    # the stream itself (a WebSocket, say).
    flags = {"failing": True, "fail_from_step": 2}
    script = tool_loop_script(2)
    async with open_runtime(adapter_factory=lambda env, ctx: FlakyAdapter(flags, script)) as runtime:
        for i in range(40):
            session_id = f"s{i}"
            flags["failing"] = True
            handle = await runtime.start(session_id, agent_type="worker", message="go")
            if learns_of_the_end == "result()":
                assert (await handle.result()).status == "failed"
                await _act_on_the_failed_end(runtime, session_id)
            else:
                async with runtime.subscribe(session_id) as chunks:
                    async for stored in chunks:
                        if stored.type == "run_failed":
                            await _act_on_the_failed_end(runtime, session_id)
                            break
            flags["failing"] = False
            retried = await runtime.retry(session_id, mode="from_checkpoint")  # not refused as running
            assert (await retried.result()).status == "completed"


async def test_start_while_running_is_rejected_and_the_running_run_is_untouched(open_runtime, autojump_clock):
    async with open_runtime(tool_loop_script(3), delay=1.0) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="go")
        with pytest.raises(InvalidRunStateError):
            await runtime.start("s1", agent_type="worker", message="again")
        result = await handle.result()
    assert result.status == "completed"


async def test_interrupt_keeps_last_checkpoint_and_run_is_resumable(open_runtime, autojump_clock):
    async with open_runtime(tool_loop_script(3), delay=1.0) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="go")
        async for chunk in handle.stream():
            if chunk["type"] == "checkpoint":
                break
        info = await handle.interrupt("user_requested")
        assert info.status == "interrupted"
        result = await handle.result()
        status = await runtime.status("s1")
        assert result.status == "interrupted" and result.reason == "user_requested"
        assert status.can_resume and status.step_count >= 1
        messages_after_interrupt = await runtime.messages("s1")
        # The interrupted step left no message behind: the conversation ends at the last checkpoint.
        checkpoint_head = await runtime.messages("s1", checkpoint_id=status.checkpoint_id)
        assert messages_after_interrupt == checkpoint_head
        resumed = await handle.resume()
        chunks = await collect(resumed)
        assert chunks[0]["type"] == "run_resumed" and chunks[0]["mode"] == "continue"
        assert (await resumed.result()).status == "completed"
        final = await runtime.messages("s1")
    assert [m.role for m in final].count("tool") == 3


async def test_interrupt_with_nothing_running_is_rejected(open_runtime):
    async with open_runtime() as runtime:
        with pytest.raises(InvalidRunStateError):
            await runtime.interrupt("fresh")
        await (await runtime.start("s1", agent_type="worker", message="go")).result()
        with pytest.raises(InvalidRunStateError):
            await runtime.abort("s1")
        assert (await runtime.status("s1")).status == "completed"


async def test_a_command_sent_while_a_new_sessions_actor_activates_is_answered_by_that_actor(
    open_runtime, monkeypatch
):
    # A WebSocket's listener activates a new session as it attaches; a command sent right behind it (an
    # interrupt, say) must be answered once the actor is live, not refused as if there were no session
    # while its file is still being created in a worker thread.
    creating, may_finish = threading.Event(), threading.Event()
    open_store = SessionStore.open

    def open_slowly_if_new(path: Path, *, name: str | None = None) -> SessionStore:
        if not Path(path).exists():
            creating.set()
            may_finish.wait(timeout=5)
        return open_store(path, name=name)

    async def interrupt(runtime: Any, outcome: list[Any]) -> None:
        try:
            await runtime.interrupt("new")
        except InvalidRunStateError as exc:
            outcome.append((str(exc), runtime.directory.is_live("new")))

    async with open_runtime() as runtime:
        monkeypatch.setattr(SessionStore, "open", staticmethod(open_slowly_if_new))
        outcome: list[Any] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runtime.directory.get, "new")
            assert await trio.to_thread.run_sync(creating.wait, 5)
            nursery.start_soon(interrupt, runtime, outcome)
            await trio.testing.wait_all_tasks_blocked()
            may_finish.set()
        [(message, live_when_answered)] = outcome
        assert live_when_answered and "nothing is running" in message


async def test_abort_is_a_hard_stop_that_blocks_continue_but_not_retry(open_runtime, autojump_clock):
    async with open_runtime(tool_loop_script(3), delay=1.0) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="go")
        await trio.sleep(2.5)
        info = await handle.abort("user cancelled")
        assert info.status == "failed"
        result = await handle.result()
        assert result.status == "failed" and result.error == {"code": "aborted", "message": "user cancelled"}
        can, why = await handle.can_resume()
        assert can is False and "aborted" in (why or "")
        with pytest.raises(InvalidRunStateError):
            await handle.resume()
        retried = await handle.retry()
        assert (await retried.result()).status == "completed"


async def test_resume_with_message_appends_the_message_then_goes_on(open_runtime, autojump_clock):
    async with open_runtime(tool_loop_script(2), delay=1.0) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="go")
        await trio.sleep(1.5)
        await handle.interrupt()
        resumed = await handle.resume(mode="with_message", message="please hurry")
        await resumed.result()
        messages = await runtime.messages("s1")
    assert ("user", "please hurry") in [(m.role, m.content) for m in messages]


@pytest.mark.parametrize("mode", ["from_checkpoint", "branch"])
async def test_time_travel_restores_that_checkpoint_and_keeps_the_old_branch(open_runtime, mode):
    async with open_runtime(tool_loop_script(3)) as runtime:
        first = await runtime.start("s1", agent_type="worker", message="go")
        await first.result()
        old_branch = await runtime.messages("s1")
        checkpoints = await runtime.checkpoints("s1")
        middle = checkpoints[1]
        at_middle = await runtime.messages("s1", checkpoint_id=middle.id)
        resumed = await runtime.resume("s1", mode=mode, checkpoint_id=middle.id, message="take another path")
        chunks = await collect(resumed)
        new_branch = await runtime.messages("s1")
        assert await runtime.messages("s1", checkpoint_id=checkpoints[-1].id) == old_branch
    assert chunks[0]["type"] == "run_resumed" and chunks[0]["checkpointId"] == middle.id
    assert new_branch[: len(at_middle)] == at_middle
    assert new_branch[len(at_middle)].content == "take another path"
    # Step k+1 of the script replays deterministically from the restored point.
    assert new_branch[len(at_middle) + 1].content == old_branch[len(at_middle)].content


async def test_time_travel_to_an_unknown_checkpoint_is_checkpoint_not_found(open_runtime):
    from helix import CheckpointNotFoundError

    async with open_runtime() as runtime:
        await (await runtime.start("s1", agent_type="worker", message="go")).result()
        with pytest.raises(CheckpointNotFoundError):
            await runtime.resume("s1", mode="from_checkpoint", checkpoint_id="cpv1-nope")
        with pytest.raises(InvalidRequestError):
            await runtime.resume("s1", mode="from_checkpoint")
        assert (await runtime.status("s1")).status == "completed"


class Notes(pydantic.BaseModel):
    notes: list[str] = []
    priority: int = 0


async def test_resume_options_modify_state_and_append_messages_apply_to_the_restored_point(open_runtime):
    registry = AgentRegistry()
    registry.register(Agent(name="worker", system_prompt="s", tools=[lookup, remember], state_schema=Notes))
    async with open_runtime(tool_loop_script(2), registry=registry) as runtime:
        await (await runtime.start("s1", agent_type="worker", message="go")).result()
        checkpoints = await runtime.checkpoints("s1")
        from helix.commands import InputMessage

        resumed = await runtime.resume(
            "s1",
            mode="from_checkpoint",
            checkpoint_id=checkpoints[0].id,
            modify_state={"priority": 7},
            append_messages=[InputMessage(role="user", content="extra context")],
        )
        await resumed.result()
        state = await runtime.state("s1")
        messages = await runtime.messages("s1")
        with pytest.raises(InvalidRequestError):
            await runtime.resume("s1", mode="continue", modify_state={"priority": "high"})
    assert state["priority"] == 7
    assert "extra context" in [m.content for m in messages]


async def test_tool_context_updates_state_and_emits_state_patch_and_custom_chunks(open_runtime):
    registry = AgentRegistry()
    registry.register(Agent(name="worker", system_prompt="s", tools=[remember], state_schema=Notes))
    script = [
        {"text": "", "tool_calls": [{"name": "remember", "arguments": {"note": "buy milk"}}]},
        {"text": "ok"},
    ]
    async with open_runtime(script, registry=registry) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="remember milk")
        chunks = await collect(handle)
        state = await runtime.state("s1")
    patch = next(c for c in chunks if c["type"] == "state_patch")
    assert patch["patch"] == [{"op": "add", "path": "/notes/0", "value": "buy milk"}]
    custom = next(c for c in chunks if c["type"] == "custom")
    assert custom["name"] == "noted" and custom["payload"] == {"note": "buy milk"}
    assert state == {"notes": ["buy milk"], "priority": 0}


async def test_a_tool_that_raises_becomes_an_error_result_and_the_run_goes_on(open_runtime):
    script = [
        {
            "text": "",
            "tool_calls": [
                {"name": "explode", "arguments": {"reason": "x"}},
                {"name": "nosuchtool", "arguments": {}},
                {"name": "lookup", "arguments": {"wrong": 1}},
            ],
        },
        {"text": "recovered"},
    ]
    async with open_runtime(script) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message="go")
        chunks = await collect(handle)
    results = {c["toolName"]: c for c in chunks if c["type"] == "tool_result"}
    assert [r["isError"] for r in results.values()] == [True, True, True]
    assert "boom: x" in results["explode"]["result"] and "nosuchtool" in results["nosuchtool"]["result"]
    assert "item: Field required" in results["lookup"]["result"]
    assert chunks[-1]["type"] == "run_completed" and chunks[-1]["output"] == "recovered"


async def test_max_steps_interrupts_and_continue_runs_another_max_steps(open_runtime):
    async with open_runtime(tool_loop_script(5), registry=make_registry(max_steps=2)) as runtime:
        first = await runtime.start("s1", agent_type="worker", message="go")
        result = await first.result()
        assert result.status == "interrupted" and result.reason == "max_steps"
        assert (await runtime.status("s1")).step_count == 2
        second = await first.resume()
        assert (await second.result()).reason == "max_steps"
        third = await second.resume()
        assert (await third.result()).status == "completed"
        assert (await runtime.status("s1")).step_count == 2


class Answer(pydantic.BaseModel):
    city: str
    population: int


async def test_structured_output_invalid_once_is_fed_back_then_accepted(open_runtime):
    registry = AgentRegistry()
    registry.register(Agent(name="worker", system_prompt="s", output_schema=Answer))
    script = [{"text": "Paris, about two million"}, {"text": '{"city": "Paris", "population": 2100000}'}]
    async with open_runtime(script, registry=registry) as runtime:
        result = await (await runtime.start("s1", agent_type="worker", message="capital?")).result()
        messages = await runtime.messages("s1")
    assert result.status == "completed"
    assert result.output == {"city": "Paris", "population": 2100000}
    assert messages[2].role == "user" and "schema" in messages[2].content


async def test_structured_output_invalid_twice_fails_the_run_with_a_clear_error(open_runtime):
    registry = AgentRegistry()
    registry.register(Agent(name="worker", system_prompt="s", output_schema=Answer))
    async with open_runtime([{"text": "not json"}], registry=registry) as runtime:
        result = await (await runtime.start("s1", agent_type="worker", message="capital?")).result()
    assert result.status == "failed" and result.error is not None
    assert result.error["code"] == "output_validation_failed"


class FlakyAdapter:
    """Fails every step while ``failing`` is set; otherwise delegates to a scripted adapter."""

    def __init__(self, state: dict[str, Any], script: list[dict[str, Any]]) -> None:
        self.state = state
        self.inner = ScriptedAdapter(script)

    async def stream_step(self, request: StepRequest):  # type: ignore[no-untyped-def]
        if self.state["failing"] and request.step >= self.state.get("fail_from_step", 1):
            raise LLMProviderError("openai answered 503", provider="openai", status=503, retryable=True)
        async for event in self.inner.stream_step(request):
            yield event


@pytest.mark.parametrize("mode", ["from_checkpoint", "from_start"])
async def test_retry_re_runs_a_failed_run(open_runtime, mode):
    flags = {"failing": True, "fail_from_step": 2}
    script = tool_loop_script(2)
    async with open_runtime(adapter_factory=lambda env, ctx: FlakyAdapter(flags, script)) as runtime:
        failed = await (await runtime.start("s1", agent_type="worker", message="go")).result()
        assert failed.status == "failed" and failed.error["code"] == "llm_error"
        status = await runtime.status("s1")
        assert status.step_count == 1 and status.can_resume
        flags["failing"] = False
        retried = await runtime.retry("s1", mode=mode)
        chunks = await collect(retried)
        messages = await runtime.messages("s1")
    assert chunks[0]["type"] == "run_resumed" and chunks[0]["retry"] is True
    assert chunks[-1]["type"] == "run_completed"
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]


async def test_retry_of_a_run_that_did_not_fail_is_rejected(open_runtime):
    async with open_runtime() as runtime:
        await (await runtime.start("s1", agent_type="worker", message="go")).result()
        with pytest.raises(InvalidRunStateError):
            await runtime.retry("s1")


async def test_a_silent_model_is_failed_by_the_step_watchdog(open_runtime, autojump_clock):
    class Silent:
        async def stream_step(self, request: StepRequest):  # type: ignore[no-untyped-def]
            await trio.sleep_forever()
            yield  # pragma: no cover

    async with open_runtime(adapter_factory=lambda env, ctx: Silent(), step_timeout=30.0) as runtime:
        result = await (await runtime.start("s1", agent_type="worker", message="go")).result()
        assert result.status == "failed" and result.error["code"] == "step_timeout"
        assert (await runtime.status("s1")).is_executing is False


async def test_unknown_agent_type_is_agent_not_found_and_nothing_is_written(open_runtime, data_dir):
    from helix import AgentNotFoundError

    async with open_runtime() as runtime:
        with pytest.raises(AgentNotFoundError) as caught:
            await runtime.start("s1", agent_type="nobody", message="hi")
        assert caught.value.available_types == ["worker"]
        page = await runtime.history("s1")
        assert page.chunks == [] and (await runtime.status("s1")).status == "idle"


async def test_five_megabyte_message_and_tool_result_are_stored_and_replayed_intact(open_runtime):
    big = "x" * (5 * 1024 * 1024)
    script = [{"text": "", "tool_calls": [{"name": "lookup", "arguments": {"item": big}}]}, {"text": "ok"}]
    async with open_runtime(script) as runtime:
        handle = await runtime.start("s1", agent_type="worker", message=big)
        chunks = await collect(handle)
        messages = await runtime.messages("s1")
    assert messages[0].content == big
    assert messages[2].content == f"{big}: 3 in stock"
    assert next(c for c in chunks if c["type"] == "tool_result")["result"] == f"{big}: 3 in stock"


async def test_every_run_ends_with_exactly_one_terminal_chunk_when_stops_race_completion(
    open_runtime, autojump_clock
):
    async with open_runtime(tool_loop_script(1), delay=0.5) as runtime:
        for i in range(40):
            handle = await runtime.start("s1", agent_type="worker", message=f"go {i}")
            await trio.sleep(0.5 * (i % 7))
            stopper = (runtime.interrupt, runtime.abort)[i % 2]
            try:
                await stopper("s1", "race")
            except InvalidRunStateError:
                pass
            await handle.result()
            if (await runtime.status("s1")).status == "failed":
                await runtime.retry("s1")
                await runtime.wait_idle("s1")
        page = await runtime.history("s1", limit=1000)
        chunks = [c.as_dict() for c in page.chunks]
        while page.has_more:
            page = await runtime.history("s1", from_seq=page.next_seq)
            chunks += [c.as_dict() for c in page.chunks]
    by_run: dict[str, list[str]] = {}
    for chunk in chunks:
        by_run.setdefault(chunk["runId"], []).append(chunk["type"])
    for run_id, kinds in by_run.items():
        terminals = [k for k in kinds if k in {"run_completed", "run_failed", "run_interrupted"}]
        assert len(terminals) == 1, (run_id, kinds)
        assert kinds[-1] == terminals[0], (run_id, kinds)
