"""OpenAIAdapter against a fake Chat Completions server on 127.0.0.1, through the openai SDK under trio."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
import trio

from adapters.openai import OpenAIAdapter
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
    openai_chunk,
    openai_error,
    openai_reply,
    openai_stream,
    openai_usage,
)

# The openai SDK stops reading at `data: [DONE]` and leaves its inner async generators (SSE decoder, httpx2
# byte iterators) to the garbage collector; trio's finalizer then warns. The response itself is closed by
# then (the SDK drains and closes it, and the adapter closes it again), so only the warning is ignored.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Async generator '(openai|httpx2|httpcore2)\.:ResourceWarning"
)

REQUEST = StepRequest(system_prompt="You are terse.", messages=(Message(role="user", content="Hi"),))


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[OpenAIAdapter]:
    async with OpenAIAdapter(
        model="gpt-4o-mini", api_key="test-key", base_url=provider.openai_base_url, max_retries=2
    ) as adapter:
        yield adapter


async def collect(adapter: OpenAIAdapter, request: StepRequest = REQUEST) -> list[LLMEvent]:
    async with aclosing(adapter.stream_step(request)) as events:
        return [event async for event in events]


async def test_text_answer_streams_as_text_deltas_and_finishes_with_stop(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(openai_reply(text=["Hel", "lo", "!"], usage=openai_usage(12, 3)))

    events = await collect(adapter)

    assert events == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        TextDelta(text="!"),
        StepFinished(
            usage=Usage(input_tokens=12, output_tokens=3),
            finish_reason="stop",
            model="gpt-4o-mini-2024-07-18",
        ),
    ]
    body = provider.requests[0].body
    assert provider.requests[0].path == "/v1/chat/completions"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
    ]


async def test_parallel_tool_calls_are_assembled_from_arguments_split_across_deltas(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        openai_reply(
            tool_calls=[
                ToolUse(id="call_paris", name="get_weather", argument_pieces=['{"ci', 'ty": "Pa', 'ris"}']),
                ToolUse(
                    id="call_rome",
                    name="get_weather",
                    argument_pieces=['{"city"', ': "Rome", ', '"days": 2}'],
                ),
                ToolUse(id="call_time", name="get_time", argument_pieces=[]),
            ]
        )
    )

    events = await collect(adapter)

    ends = [event for event in events if isinstance(event, ToolCallEnd)]
    assert ends == [
        ToolCallEnd(id="call_paris", name="get_weather", arguments={"city": "Paris"}),
        ToolCallEnd(id="call_rome", name="get_weather", arguments={"city": "Rome", "days": 2}),
        ToolCallEnd(id="call_time", name="get_time", arguments={}),
    ]
    starts = [event for event in events if isinstance(event, ToolCallStart)]
    assert [(s.id, s.name) for s in starts] == [
        ("call_paris", "get_weather"),
        ("call_rome", "get_weather"),
        ("call_time", "get_time"),
    ]
    for call_id, pieces in [
        ("call_paris", ['{"ci', 'ty": "Pa', 'ris"}']),
        ("call_rome", ['{"city"', ': "Rome", ', '"days": 2}']),
    ]:
        positions = [i for i, e in enumerate(events) if getattr(e, "id", None) == call_id]
        kinds = [type(events[i]) for i in positions]
        assert kinds == [ToolCallStart, *[ToolCallDelta] * len(pieces), ToolCallEnd]
        assert [events[i].arguments_delta for i in positions[1:-1]] == pieces  # type: ignore[union-attr]
    finished = events[-1]
    assert isinstance(finished, StepFinished) and finished.finish_reason == "tool_calls"


async def test_usage_in_the_final_chunk_reports_cached_and_reasoning_tokens(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        openai_reply(
            reasoning=["Think", "ing."],
            text=["42"],
            usage=openai_usage(2006, 300, cached_tokens=1920, reasoning_tokens=256),
            model="o4-mini-2025-04-16",
        )
    )

    events = await collect(adapter)

    assert events[:3] == [ReasoningDelta(text="Think"), ReasoningDelta(text="ing."), TextDelta(text="42")]
    assert events[-1] == StepFinished(
        usage=Usage(input_tokens=2006, output_tokens=300, cached_tokens=1920, reasoning_tokens=256),
        finish_reason="stop",
        model="o4-mini-2025-04-16",
    )


async def test_reasoning_field_of_ollama_style_servers_becomes_reasoning_deltas(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        openai_stream(
            [
                openai_chunk(delta={"role": "assistant", "content": "", "reasoning": "Hmm."}),
                openai_chunk(delta={"content": "Yes."}),
                # Some servers put usage on the finish chunk and send no usage-only chunk.
                openai_chunk(delta={}, finish_reason="stop", usage=openai_usage(7, 2)),
            ]
        )
    )

    events = await collect(adapter)

    assert events[:2] == [ReasoningDelta(text="Hmm."), TextDelta(text="Yes.")]
    assert isinstance(events[-1], StepFinished) and events[-1].usage == Usage(input_tokens=7, output_tokens=2)


async def test_tool_calls_of_servers_that_send_no_index_are_told_apart_by_id(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    def call(**fields: object) -> dict[str, object]:
        return openai_chunk(delta={"tool_calls": [fields]})

    provider.script(
        openai_stream(
            [
                call(id="call_a", type="function", function={"name": "f", "arguments": '{"x": '}),
                call(function={"arguments": "1}"}),
                call(id="call_b", type="function", function={"name": "g", "arguments": "{}"}),
                openai_chunk(delta={}, finish_reason="tool_calls"),
            ]
        )
    )

    events = await collect(adapter)

    assert [e for e in events if isinstance(e, ToolCallEnd)] == [
        ToolCallEnd(id="call_a", name="f", arguments={"x": 1}),
        ToolCallEnd(id="call_b", name="g", arguments={}),
    ]


async def test_tool_arguments_that_are_not_a_strict_json_object_end_with_an_error_and_empty_arguments(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        openai_reply(
            tool_calls=[
                ToolUse(id="call_broken", name="f", argument_pieces=['{"a": ', "1"]),
                ToolUse(id="call_nan", name="f", argument_pieces=['{"a": NaN}']),
                ToolUse(id="call_list", name="f", argument_pieces=["[1, 2]"]),
                ToolUse(id="call_ok", name="f", argument_pieces=['{"a": 1}']),
            ]
        )
    )

    events = await collect(adapter)

    ends = {event.id: event for event in events if isinstance(event, ToolCallEnd)}
    for call_id in ("call_broken", "call_nan", "call_list"):
        assert ends[call_id].arguments == {}
        assert ends[call_id].error
    assert "NaN" in (ends["call_nan"].error or "")
    assert ends["call_ok"] == ToolCallEnd(id="call_ok", name="f", arguments={"a": 1})


async def test_rate_limit_is_retried_by_the_sdk_and_the_step_succeeds(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        openai_error(
            429, "Rate limit reached", type="requests", code="rate_limit_exceeded", headers=RETRY_NOW
        ),
        openai_reply(text=["ok"]),
    )

    events = await collect(adapter)

    assert events[0] == TextDelta(text="ok")
    assert [r.headers["x-stainless-retry-count"] for r in provider.requests] == ["0", "1"]
    assert provider.requests[0].body == provider.requests[1].body


async def test_rate_limit_that_outlasts_the_retries_raises_a_retryable_error(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        *[openai_error(429, "Rate limit reached", type="requests", headers=RETRY_NOW) for _ in range(3)]
    )

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert (caught.value.provider, caught.value.provider_status, caught.value.retryable) == (
        "openai",
        429,
        True,
    )
    assert len(provider.requests) == 3  # the first try and max_retries=2 retries


async def test_unauthorized_raises_a_provider_error_naming_openai_and_401_without_retrying(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(
        openai_error(
            401, "Incorrect API key provided: test-key.", type="invalid_request_error", code="invalid_api_key"
        )
    )

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    error = caught.value
    assert (error.provider, error.provider_status, error.retryable) == ("openai", 401, False)
    assert "openai" in error.message and "401" in error.message and "Incorrect API key" in error.message
    assert error.to_dict()["code"] == "llm_error"
    assert len(provider.requests) == 1


async def test_stream_cut_in_the_middle_raises_a_retryable_error_after_the_events_so_far(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(openai_reply(text=["one ", "two ", "three ", "four"], ending="cut"))
    seen: list[LLMEvent] = []

    with pytest.raises(LLMProviderError) as caught:
        async with aclosing(adapter.stream_step(REQUEST)) as events:
            async for event in events:
                seen.append(event)

    assert (caught.value.provider, caught.value.provider_status, caught.value.retryable) == (
        "openai",
        None,
        True,
    )
    assert "cut" in caught.value.message
    assert seen == [TextDelta(text="one "), TextDelta(text="two ")]
    assert len(provider.requests) == 1  # a half-streamed step is not replayed behind the engine's back


async def test_stream_that_ends_cleanly_without_a_finish_reason_counts_as_cut(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(openai_stream([openai_chunk(delta={"content": "par"})], done=False))

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert caught.value.retryable and caught.value.provider_status is None


async def test_error_object_inside_the_stream_raises_a_retryable_error(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    error = {
        "error": {"message": "The server had an error while processing your request.", "type": "server_error"}
    }
    provider.script(openai_stream([openai_chunk(delta={"content": "par"}), error], done=False))

    with pytest.raises(LLMProviderError) as caught:
        await collect(adapter)

    assert (caught.value.provider, caught.value.retryable) == ("openai", True)
    assert "The server had an error" in caught.value.message


async def test_one_adapter_serves_concurrent_steps(provider: FakeProvider, adapter: OpenAIAdapter) -> None:
    provider.script(*[openai_reply(text=["same answer"]) for _ in range(3)])
    results: list[list[LLMEvent]] = []

    async def step() -> None:
        results.append(await collect(adapter))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(step)

    assert [events[0] for events in results] == [TextDelta(text="same answer")] * 3
    assert len(provider.requests) == 3


async def test_cancelling_the_consumer_closes_the_http_connection_within_100ms(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(openai_reply(text=["a", "b", "c", "d", "e"], ending="hang"))

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


async def test_conversation_with_tool_calls_and_results_round_trips_into_the_request_body(
    provider: FakeProvider, adapter: OpenAIAdapter
) -> None:
    provider.script(openai_reply(text=["Done."]))
    request = StepRequest(
        system_prompt="You help with weather.",
        messages=(
            Message(role="user", content="Weather in Paris and Rome?"),
            Message(
                role="assistant",
                content="",
                tool_calls=(
                    ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
                    ToolCall(id="call_2", name="get_weather", arguments={"city": "Rome", "units": "C"}),
                ),
            ),
            Message(role="tool", content="18C", tool_call_id="call_1"),
            Message(role="tool", content="21C", tool_call_id="call_2"),
            Message(role="assistant", content="Paris 18C, Rome 21C."),
            Message(role="user", content="Thanks!"),
        ),
        tools=(
            ToolSpec(
                name="get_weather",
                description="Current weather of a city.",
                parameters={
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            ),
        ),
    )

    await collect(adapter, request)

    body = provider.requests[0].body
    assert body["messages"] == [
        {"role": "system", "content": "You help with weather."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome", "units": "C"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "21C"},
        {"role": "assistant", "content": "Paris 18C, Rome 21C."},
        {"role": "user", "content": "Thanks!"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather of a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]


async def test_request_model_output_schema_and_params_reach_the_api(provider: FakeProvider) -> None:
    provider.script(openai_reply(text=['{"answer": 42}']))
    schema = {"title": "Final Answer", "type": "object", "properties": {"answer": {"type": "integer"}}}
    request = StepRequest(system_prompt="", messages=REQUEST.messages, model="gpt-4.1", output_schema=schema)

    async with OpenAIAdapter(
        model="gpt-4o-mini", api_key="k", base_url=provider.openai_base_url, temperature=0.2, seed=7, top_k=40
    ) as adapter:
        await collect(adapter, request)

    body = provider.requests[0].body
    assert body["model"] == "gpt-4.1"
    # `top_k` is no parameter of the SDK (a local server's field): it still reaches the JSON body.
    assert (body["temperature"], body["seed"], body["top_k"]) == (0.2, 7, 40)
    assert body["messages"] == [{"role": "user", "content": "Hi"}]  # no empty system message
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Final_Answer", "schema": schema, "strict": False},
    }
    assert "tools" not in body


async def test_a_shared_client_is_used_and_left_open(provider: FakeProvider) -> None:
    import openai

    provider.script(openai_reply(text=["one"]), openai_reply(text=["two"]))
    async with openai.AsyncOpenAI(api_key="k", base_url=provider.openai_base_url) as client:
        for expected in ("one", "two"):
            async with OpenAIAdapter(model="gpt-4o-mini", client=client) as adapter:
                assert (await collect(adapter))[0] == TextDelta(text=expected)
        assert not client.is_closed()

    with pytest.raises(TypeError, match="either client= or api_key="):
        OpenAIAdapter(model="m", client=client, api_key="k")


async def test_stream_options_none_leaves_the_field_out_for_servers_that_refuse_it(
    provider: FakeProvider,
) -> None:
    provider.script(openai_stream([openai_chunk(delta={"content": "ok"}, finish_reason="stop")]))

    async with OpenAIAdapter(
        model="llama3.2", api_key="ollama", base_url=provider.openai_base_url, stream_options=None
    ) as adapter:
        events = await collect(adapter)

    assert "stream_options" not in provider.requests[0].body
    assert events[-1] == StepFinished(usage=Usage(), finish_reason="stop", model="gpt-4o-mini-2024-07-18")


def test_without_the_sdk_the_module_imports_and_the_adapter_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # `import openai` now raises ImportError

    with pytest.raises(ImportError, match=r"pip install 'helix-agents\[openai\]'"):
        OpenAIAdapter(model="gpt-4o-mini", api_key="k")
