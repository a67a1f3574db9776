from __future__ import annotations

from typing import Any

import pytest
import trio
from pydantic import BaseModel

import adapters
from adapters import ScriptedAdapter, ScriptedStep, ScriptedToolCall
from helix.llm import (
    LLMAdapter,
    LLMEvent,
    Message,
    ReasoningDelta,
    StepFinished,
    StepRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)


def request(*messages: Message, system_prompt: str = "", model: str | None = None) -> StepRequest:
    return StepRequest(system_prompt=system_prompt, messages=messages or (user("hi"),), model=model)


def user(text: str) -> Message:
    return Message(role="user", content=text)


def assistant(text: str = "", *calls: ToolCall) -> Message:
    return Message(role="assistant", content=text, tool_calls=calls)


async def play(adapter: LLMAdapter, step_request: StepRequest) -> list[LLMEvent]:
    return [event async for event in adapter.stream_step(step_request)]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def finished(events: list[LLMEvent]) -> StepFinished:
    assert isinstance(events[-1], StepFinished), "the last event of a step is StepFinished"
    return events[-1]


async def test_text_streams_in_chunks_of_chars_per_chunk_characters() -> None:
    events = await play(ScriptedAdapter([{"text": "Hello, wonderful world"}], chars_per_chunk=8), request())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello, w", "onderful", " world"]
    assert finished(events).finish_reason == "stop"
    assert len(events) == 4


async def test_a_step_streams_reasoning_then_text_then_tool_calls_then_finish() -> None:
    step = {
        "reasoning": "think twice",
        "text": "Let me look.",
        "tool_calls": [
            {"name": "lookup", "arguments": {"item": "é"}},
            {"name": "ship", "arguments": {}},
        ],
    }
    events = await play(ScriptedAdapter([step], chars_per_chunk=6), request())
    assert events[:5] == [
        ReasoningDelta(text="think "),
        ReasoningDelta(text="twice"),
        TextDelta(text="Let me"),
        TextDelta(text=" look."),
        ToolCallStart(id="call_0_0", name="lookup"),
    ]
    assert events[5:11] == [
        ToolCallDelta(id="call_0_0", arguments_delta='{"item":"é"}'),
        ToolCallEnd(id="call_0_0", name="lookup", arguments={"item": "é"}),
        ToolCallStart(id="call_0_1", name="ship"),
        ToolCallDelta(id="call_0_1", arguments_delta="{}"),
        ToolCallEnd(id="call_0_1", name="ship", arguments={}),
        finished(events),
    ]
    assert finished(events).finish_reason == "tool_calls"


async def test_step_index_is_the_number_of_assistant_turns_in_the_conversation() -> None:
    adapter = ScriptedAdapter(
        [
            {"text": "first", "tool_calls": [{"name": "lookup", "arguments": {"item": "a"}}]},
            {"text": "second"},
            {"text": "third"},
        ]
    )
    call = ToolCall(id="call_0_0", name="lookup", arguments={"item": "a"})
    conversation = (
        user("hi"),
        assistant("first", call),
        Message(role="tool", content="ok", tool_call_id="call_0_0"),
    )
    assert text_of(await play(adapter, request(user("hi")))) == "first"
    assert text_of(await play(adapter, request(*conversation))) == "second"
    # The same conversation again (a resumed or branched run) plays the same step again.
    assert text_of(await play(adapter, request(*conversation))) == "second"
    assert text_of(await play(adapter, request(*conversation, assistant("second"), user("more")))) == "third"


async def test_tool_call_ids_carry_the_step_index_so_they_are_unique_in_a_conversation() -> None:
    call_step = {"tool_calls": [{"name": "lookup", "arguments": {"item": "a"}}]}
    adapter = ScriptedAdapter([call_step])
    events = await play(adapter, request(user("hi"), assistant(), assistant()))
    assert [e.id for e in events if isinstance(e, ToolCallStart)] == ["call_2_0"]


async def test_past_the_end_of_the_script_the_last_step_repeats() -> None:
    adapter = ScriptedAdapter([{"text": "one"}, {"text": "last"}])
    long_conversation = [m for k in range(5) for m in (user(f"q{k}"), assistant(f"a{k}"))]
    assert text_of(await play(adapter, request(*long_conversation))) == "last"


async def test_default_usage_follows_the_documented_rule_and_is_deterministic() -> None:
    step = {
        "text": "x" * 40,
        "reasoning": "r" * 20,
        "tool_calls": [{"name": "lookup", "arguments": {"item": "a"}}],
    }
    adapter = ScriptedAdapter([step])
    step_request = request(user("u" * 100), system_prompt="s" * 60)
    usage = finished(await play(adapter, step_request)).usage
    arguments_json = '{"item":"a"}'
    assert usage == Usage(
        input_tokens=(60 + 100) // 4,
        output_tokens=(40 + 20 + len("lookup") + len(arguments_json)) // 4,
        cached_tokens=0,
        reasoning_tokens=20 // 4,
    )
    assert finished(await play(adapter, step_request)).usage == usage


async def test_default_usage_is_never_zero_even_for_an_empty_step() -> None:
    usage = finished(await play(ScriptedAdapter([{}]), request(user("")))).usage
    assert (usage.input_tokens, usage.output_tokens) == (1, 1)


async def test_usage_given_by_the_step_is_reported_as_is() -> None:
    adapter = ScriptedAdapter(
        [{"text": "hi", "usage": {"input_tokens": 100, "output_tokens": 7, "cached_tokens": 50}}]
    )
    assert finished(await play(adapter, request())).usage == Usage(
        input_tokens=100, output_tokens=7, cached_tokens=50
    )


async def test_step_finished_names_the_requested_model_or_scripted() -> None:
    adapter = ScriptedAdapter([{"text": "hi"}])
    assert finished(await play(adapter, request())).model == "scripted"
    assert finished(await play(adapter, request(model="gpt-test"))).model == "gpt-test"


async def test_delay_spaces_events_on_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    adapter = ScriptedAdapter([{"text": "abcdefghij"}], chars_per_chunk=4, delay=0.5)
    start = trio.current_time()
    arrivals: list[float] = []
    async for _event in adapter.stream_step(request()):
        arrivals.append(trio.current_time() - start)
    # Three text chunks and StepFinished, each preceded by the delay.
    assert arrivals == [0.5, 1.0, 1.5, 2.0]


async def test_zero_delay_takes_no_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    await play(ScriptedAdapter([{"text": "x" * 100}], chars_per_chunk=1), request())
    assert trio.current_time() == start


async def test_a_slow_step_is_cancelled_by_its_cancel_scope(autojump_clock: trio.testing.MockClock) -> None:
    adapter = ScriptedAdapter([{"text": "abcdefgh"}], chars_per_chunk=1, delay=1.0)
    received: list[LLMEvent] = []
    with trio.move_on_after(3.5):
        async for event in adapter.stream_step(request()):
            received.append(event)
    assert len(received) == 3


async def test_a_script_function_chooses_each_step_from_the_request() -> None:
    def answer(step_request: StepRequest) -> dict[str, Any]:
        return {"text": f"you said {step_request.messages[-1].content}"}

    adapter = ScriptedAdapter(answer)
    assert text_of(await play(adapter, request(user("ping")))) == "you said ping"


async def test_an_async_script_function_is_awaited() -> None:
    async def answer(step_request: StepRequest) -> ScriptedStep:
        await trio.lowlevel.checkpoint()
        return ScriptedStep(text="later")

    assert text_of(await play(ScriptedAdapter(answer), request())) == "later"


async def test_a_script_function_returning_an_invalid_step_raises_value_error() -> None:
    adapter = ScriptedAdapter(lambda step_request: {"txt": "typo"})
    with pytest.raises(ValueError, match="script function"):
        await play(adapter, request())


async def test_pydantic_model_steps_are_accepted() -> None:
    class MyStep(BaseModel):
        text: str
        tool_calls: list[dict[str, Any]] = []

    adapter = ScriptedAdapter(
        [
            ScriptedStep(text="a", tool_calls=[ScriptedToolCall(name="lookup", arguments={"item": "x"})]),
            MyStep(text="b"),
        ]
    )
    first = await play(adapter, request())
    assert text_of(first) == "a"
    assert [e.arguments for e in first if isinstance(e, ToolCallEnd)] == [{"item": "x"}]
    assert text_of(await play(adapter, request(user("q"), assistant("a")))) == "b"


@pytest.mark.parametrize(
    "bad_step",
    [
        {"text": 5},
        {"tool_call": []},
        {"tool_calls": [{"arguments": {}}]},
        {"tool_calls": [{"name": "x", "arguments": {"when": object()}}]},
        {"usage": {"tokens": 3}},
        "just text",
    ],
)
def test_a_bad_step_is_rejected_at_construction_naming_its_index(bad_step: object) -> None:
    with pytest.raises(ValueError, match="script step 1"):
        ScriptedAdapter([{"text": "fine"}, bad_step])  # type: ignore[list-item]


def test_an_empty_script_or_a_bad_option_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        ScriptedAdapter([])
    with pytest.raises(TypeError):
        ScriptedAdapter("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chars_per_chunk"):
        ScriptedAdapter([{}], chars_per_chunk=0)
    with pytest.raises(ValueError, match="delay"):
        ScriptedAdapter([{}], delay=-1)


async def test_tool_call_arguments_handed_out_are_copies_of_the_script() -> None:
    adapter = ScriptedAdapter([{"tool_calls": [{"name": "lookup", "arguments": {"items": ["a"]}}]}])
    first = next(e for e in await play(adapter, request()) if isinstance(e, ToolCallEnd))
    first.arguments["items"].append("mutated")
    second = next(e for e in await play(adapter, request()) if isinstance(e, ToolCallEnd))
    assert second.arguments == {"items": ["a"]}


async def test_requests_are_recorded_in_order() -> None:
    adapter = ScriptedAdapter([{"text": "hi"}])
    first, second = request(user("one")), request(user("two"))
    await play(adapter, first)
    await play(adapter, second)
    assert adapter.requests == (first, second)


def test_adapters_package_exports_the_scripted_adapter_and_rejects_unknown_names() -> None:
    scripted_names = {"ScriptedAdapter", "ScriptedStep", "ScriptedToolCall"}
    assert scripted_names <= set(adapters.__all__)
    assert all(hasattr(adapters, name) for name in scripted_names)
    with pytest.raises(AttributeError, match="NoSuchAdapter"):
        adapters.NoSuchAdapter  # noqa: B018
