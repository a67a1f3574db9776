"""AnthropicAdapter against a fake Messages server on 127.0.0.1, through the real anthropic SDK under trio."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
import trio

from adapters.anthropic import AnthropicAdapter
from helix.errors import LLMProviderError
from helix.llm import (
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
    ToolSpec,
    Usage,
)
from tests.adapters.fake_providers import (
    RETRY_NOW,
    FakeProvider,
    ToolUse,
    anthropic_error,
    anthropic_reply,
    anthropic_stream,
)

REQUEST = StepRequest(system_prompt="You are terse.", messages=(Message(role="user", content="Hi"),))
MODEL = "claude-fake-1-20250101"


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[AnthropicAdapter]:
    async with AnthropicAdapter(
        model="claude-fake-1", api_key="test-key", base_url=provider.anthropic_base_url, max_retries=2
    ) as adapter:
        yield adapter


async def collect(adapter: AnthropicAdapter, request: StepRequest = REQUEST) -> list[LLMEvent]:
    async with aclosing(adapter.stream_step(request)) as events:
        return [event async for event in events]


async def test_text_answer_streams_as_text_deltas_and_finishes_with_stop(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_reply(text=["Hel", "lo", "!"], input_tokens=12, output_tokens=(3,)))

    events = await collect(adapter)

    assert events == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        TextDelta(text="!"),
        StepFinished(usage=Usage(input_tokens=12, output_tokens=3), finish_reason="stop", model=MODEL),
    ]
    request = provider.requests[0]
    assert request.path == "/v1/messages"
    assert request.body == {
        "model": "claude-fake-1",
        "max_tokens": 4096,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }


async def test_parallel_tool_uses_are_assembled_from_input_json_deltas(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    paris = ['{"ci', 'ty": "Pa', 'ris"}']
    rome = ['{"city"', ': "Rome", ', '"days": 2}']
    provider.script(
        anthropic_reply(
            text=["Checking both."],
            tool_uses=[
                ToolUse(id="toolu_paris", name="get_weather", argument_pieces=paris),
                ToolUse(id="toolu_rome", name="get_weather", argument_pieces=rome),
                ToolUse(id="toolu_time", name="get_time"),
            ],
        )
    )

    events = await collect(adapter)

    assert events == [
        TextDelta(text="Checking both."),
        ToolCallStart(id="toolu_paris", name="get_weather"),
        *[ToolCallDelta(id="toolu_paris", arguments_delta=piece) for piece in paris],
        ToolCallEnd(id="toolu_paris", name="get_weather", arguments={"city": "Paris"}),
        ToolCallStart(id="toolu_rome", name="get_weather"),
        *[ToolCallDelta(id="toolu_rome", arguments_delta=piece) for piece in rome],
        ToolCallEnd(id="toolu_rome", name="get_weather", arguments={"city": "Rome", "days": 2}),
        ToolCallStart(id="toolu_time", name="get_time"),
        ToolCallEnd(id="toolu_time", name="get_time", arguments={}),
        StepFinished(usage=Usage(input_tokens=10, output_tokens=5), finish_reason="tool_calls", model=MODEL),
    ]


async def test_thinking_deltas_become_reasoning_deltas(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_reply(thinking=["Let me ", "think."], text=["42"]))

    events = await collect(adapter)

    assert events[:3] == [ReasoningDelta(text="Let me "), ReasoningDelta(text="think."), TextDelta(text="42")]


async def test_cumulative_message_delta_usage_is_taken_not_added_and_cache_reads_count_as_cached_input(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(
        anthropic_reply(
            text=["ok"],
            input_tokens=50,
            cache_read_input_tokens=1800,
            cache_creation_input_tokens=200,
            output_tokens=(40, 95, 120),
        )
    )

    events = await collect(adapter)

    assert events[-1] == StepFinished(
        usage=Usage(input_tokens=50 + 1800 + 200, output_tokens=120, cached_tokens=1800),
        finish_reason="stop",
        model=MODEL,
    )


async def test_tool_input_that_is_not_strict_json_ends_with_an_error_and_empty_arguments(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(
        anthropic_reply(
            tool_uses=[
                ToolUse(id="toolu_broken", name="f", argument_pieces=['{"a": ', "1"]),
                ToolUse(id="toolu_inf", name="f", argument_pieces=['{"a": Infinity}']),
            ]
        )
    )

    events = await collect(adapter)

    ends = [event for event in events if isinstance(event, ToolCallEnd)]
    assert [(end.id, end.arguments) for end in ends] == [("toolu_broken", {}), ("toolu_inf", {})]
    assert all(end.error for end in ends)


async def test_overload_is_retried_by_the_sdk_and_the_step_succeeds(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(
        anthropic_error(529, "Overloaded", type="overloaded_error", headers=RETRY_NOW),
        anthropic_error(
            429, "Number of requests has exceeded your rate limit", type="rate_limit_error", headers=RETRY_NOW
        ),
        anthropic_reply(text=["ok"]),
    )

    events = await collect(adapter)

    assert events[0] == TextDelta(text="ok")
    assert [r.headers["x-stainless-retry-count"] for r in provider.requests] == ["0", "1", "2"]


async def test_rate_limit_that_outlasts_the_retries_raises_a_retryable_error(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(*[anthropic_error(429, "Rate limited", type="rate_limit_error", headers=RETRY_NOW)] * 3)

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert (caught.value.provider, caught.value.provider_status, caught.value.retryable) == (
        "anthropic",
        429,
        True,
    )
    assert len(provider.requests) == 3


async def test_unauthorized_raises_a_provider_error_naming_anthropic_and_401_without_retrying(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_error(401, "invalid x-api-key", type="authentication_error"))

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    error = caught.value
    assert (error.provider, error.provider_status, error.retryable) == ("anthropic", 401, False)
    assert "anthropic" in error.message and "401" in error.message and "invalid x-api-key" in error.message
    assert len(provider.requests) == 1


async def test_bad_request_is_not_retried_and_says_what_was_refused(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_error(400, "max_tokens: 99999 > 64000", type="invalid_request_error"))

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert (caught.value.provider_status, caught.value.retryable) == (400, False)
    assert "max_tokens: 99999 > 64000" in caught.value.message
    assert len(provider.requests) == 1


async def test_overload_reported_inside_the_stream_raises_a_retryable_error(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    start = json.loads(anthropic_reply().frames[0].decode().split("data: ", 1)[1])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    provider.script(anthropic_stream([start, error]))

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert (caught.value.provider, caught.value.provider_status, caught.value.retryable) == (
        "anthropic",
        529,
        True,
    )
    assert "overloaded_error" in caught.value.message


async def test_stream_cut_in_the_middle_raises_a_retryable_error_after_the_events_so_far(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_reply(text=["one ", "two ", "three ", "four ", "five ", "six"], ending="cut"))
    seen: list[LLMEvent] = []

    with pytest.raises(LLMProviderError) as caught:
        async with aclosing(adapter.stream_step(REQUEST)) as events:
            async for event in events:
                seen.append(event)

    error = caught.value
    assert (error.provider, error.provider_status, error.retryable) == ("anthropic", None, True)
    assert "cut" in error.message
    assert seen and all(isinstance(event, TextDelta) for event in seen)
    assert len(provider.requests) == 1


async def test_stream_that_ends_cleanly_without_message_stop_counts_as_cut(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    whole = anthropic_reply(text=["par", "tial"])
    provider.script(anthropic_stream(json.loads(f.decode().split("data: ", 1)[1]) for f in whole.frames[:-1]))

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert caught.value.retryable and caught.value.provider_status is None


async def test_cancelling_the_consumer_closes_the_http_connection_within_100ms(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_reply(text=["a", "b", "c", "d", "e", "f", "g"], ending="hang"))

    with trio.CancelScope() as interrupt:
        async with aclosing(adapter.stream_step(REQUEST)) as events:
            async for _event in events:
                cancelled_at = trio.current_time()
                interrupt.cancel()

    assert interrupt.cancelled_caught
    # Real time (no mock clock here): the provider sees the socket closed, not left to garbage collection.
    with trio.fail_at(cancelled_at + 0.1):
        await provider.disconnected.wait()
    assert len(provider.requests) == 1


async def test_conversation_with_tool_uses_and_results_round_trips_into_the_request_body(
    provider: FakeProvider, adapter: AnthropicAdapter
) -> None:
    provider.script(anthropic_reply(text=["Done."]))
    weather = ToolSpec(
        name="get_weather",
        description="Current weather of a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    request = StepRequest(
        system_prompt="You help with weather.",
        messages=(
            Message(role="user", content="Weather in Paris and Rome?"),
            Message(
                role="assistant",
                content="Checking.",
                tool_calls=(
                    ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"}),
                    ToolCall(id="toolu_2", name="get_weather", arguments={"city": "Rome"}),
                ),
            ),
            Message(role="tool", content="18C", tool_call_id="toolu_1"),
            Message(role="tool", content="21C", tool_call_id="toolu_2"),
            Message(role="assistant", content="Paris 18C, Rome 21C."),
            Message(role="system", content="Answer in French from now on."),
            Message(role="user", content="Thanks!"),
        ),
        tools=(weather,),
    )

    await collect(adapter, request)

    body = provider.requests[0].body
    assert body["system"] == "You help with weather.\n\nAnswer in French from now on."
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "21C"},
            ],
        },
        {"role": "assistant", "content": "Paris 18C, Rome 21C."},
        {"role": "user", "content": "Thanks!"},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "input_schema": weather.parameters,
        }
    ]


async def test_request_model_output_schema_and_params_reach_the_api(provider: FakeProvider) -> None:
    provider.script(anthropic_reply(text=['{"answer": 42}']))
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    request = StepRequest(
        system_prompt="Be exact.", messages=REQUEST.messages, model="claude-fake-2", output_schema=schema
    )

    async with AnthropicAdapter(
        model="claude-fake-1",
        api_key="k",
        base_url=provider.anthropic_base_url,
        max_tokens=1024,
        temperature=0.2,
    ) as adapter:
        await collect(adapter, request)

    body = provider.requests[0].body
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("claude-fake-2", 1024, 0.2)
    assert body["system"].startswith("Be exact.\n\n")
    assert "JSON" in body["system"] and json.dumps(schema) in body["system"]


def test_without_the_sdk_the_module_imports_and_the_adapter_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # `import anthropic` now raises ImportError

    with pytest.raises(ImportError, match=r"pip install 'helix-agents\[anthropic\]'"):
        AnthropicAdapter(model="claude-fake-1", api_key="k")
