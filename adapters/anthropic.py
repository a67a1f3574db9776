"""Anthropic's Messages API over streaming, on the official ``anthropic`` SDK
(``pip install 'helix-agents[anthropic]'``).

The SDK's async client runs on httpx and anyio, so it works under trio as it is. Retries with backoff for
rate limits, overload (529) and 5xx are the SDK's own (``max_retries``); what is left after them, and any
refusal such as 401 or 400, is raised as :class:`helix.errors.LLMProviderError` with
``provider="anthropic"``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from helix.llm import (
    LLMEvent,
    Message,
    ReasoningDelta,
    StepFinished,
    StepRequest,
    TextDelta,
    ToolSpec,
    Usage,
)

from ._provider_sdk import SDKClientAdapter, fit_params, open_stream, read_stream, stream_cut_error
from ._tool_calls import ToolCallAssembler

PROVIDER = "anthropic"

# Anthropic's stop reasons in the vocabulary the OpenAI adapter reports, so that finish reasons mean
# the same whichever provider ran the step. Others (`pause_turn`, ...) pass through.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}

_OUTPUT_SCHEMA_INSTRUCTION = (
    "When you give your final answer (a reply without tool calls), reply with only a JSON value that "
    "matches this JSON schema, with no other text before or after it:\n"
)


class AnthropicAdapter(SDKClientAdapter):
    """An :class:`helix.llm.LLMAdapter` for the Messages API.

    ``base_url`` has the SDK's meaning: the host root, without ``/v1``. ``client`` is an
    ``anthropic.AsyncAnthropic`` to share one connection pool between adapters; then ``api_key`` and
    ``base_url`` must be left unset. ``max_retries`` is the SDK's retry budget for this adapter's requests,
    also on a given client. ``max_tokens`` is required by the API. ``params`` go to ``messages.create``
    (``temperature``, ``thinking``, ``extra_headers``, ...); a field the installed SDK has no parameter for
    goes into the JSON body through ``extra_body``.

    Structured output (``StepRequest.output_schema``) is asked for in the system prompt: the schema is
    appended with an instruction to answer with JSON only. The answer arrives as text, as with OpenAI.

    Extended thinking (``thinking={"type": "enabled", ...}``) streams as reasoning deltas, but our messages
    keep no signed thinking blocks to send back, and the API requires them on an assistant turn that made
    tool calls while thinking is on: use thinking only with agents that do not call tools, for now.

    :meth:`stream_step` keeps no state between calls, so one adapter can serve every run at once: build it
    once and let the adapter factory return it. An adapter that built its own client owns it: close it with
    :meth:`aclose` (or ``async with``) at shutdown.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        max_retries: int = 3,
        max_tokens: int = 4096,
        **params: Any,
    ) -> None:
        super().__init__(
            sdk_module="anthropic",
            client_class="AsyncAnthropic",
            adapter="AnthropicAdapter",
            model=model,
            api_key=api_key,
            base_url=base_url,
            client=client,
            max_retries=max_retries,
            params=params,
        )
        self.max_tokens = max_tokens

    def request_body(self, request: StepRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``request``."""
        body: dict[str, Any] = {"max_tokens": self.max_tokens, **self.params}
        body["model"] = request.model or self.model
        system, messages = to_anthropic_messages(request.system_prompt, request.messages)
        if request.output_schema is not None:
            instruction = _OUTPUT_SCHEMA_INSTRUCTION + json.dumps(request.output_schema)
            system = f"{system}\n\n{instruction}" if system else instruction
        if system:
            body["system"] = system
        body["messages"] = messages
        if request.tools:
            body["tools"] = [to_anthropic_tool(spec) for spec in request.tools]
        body["stream"] = True
        return body

    async def stream_step(self, request: StepRequest) -> AsyncGenerator[LLMEvent, None]:
        """Stream one step. Raises :class:`helix.errors.LLMProviderError` when the provider refuses the
        request, fails after the SDK's retries, reports an error inside the stream, or the stream ends
        before ``message_stop``."""
        body = self.request_body(request)
        create = self._client.messages.create
        stream = await open_stream(
            create(**fit_params(create, body)),
            sdk=self._sdk,
            provider=PROVIDER,
            max_retries=self.max_retries,
        )
        step = AnthropicStreamMapper(model=body["model"])
        stream_events = read_stream(stream, sdk=self._sdk, provider=PROVIDER, max_retries=self.max_retries)
        async with aclosing(stream_events):
            async for stream_event in stream_events:
                for event in step.feed(stream_event):
                    yield event
        for event in step.finish():
            yield event


def to_anthropic_messages(
    system_prompt: str, messages: tuple[Message, ...]
) -> tuple[str, list[dict[str, Any]]]:
    """Our conversation as ``(system, messages)`` for the Messages API.

    System messages inside the conversation join the system prompt (the API has no system role). Assistant
    tool calls become ``tool_use`` blocks; tool results become ``tool_result`` blocks of a user message, and
    consecutive ones share one user message, as the API requires for parallel calls. Consecutive messages
    of one role are merged into one message of content blocks. Empty text is left out: the API refuses
    empty text blocks.
    """
    system_parts = [system_prompt] if system_prompt else []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system_parts.append(message.content)
            continue
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            blocks.append(
                {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
            )
        else:
            role = message.role
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]  # the plain form for a lone text message
    return "\n\n".join(system_parts), turns


def to_anthropic_tool(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


class AnthropicStreamMapper:
    """Messages stream events of one step to our events.

    Usage: ``message_start`` carries the input side; ``message_delta`` carries counts that are cumulative
    (each one replaces the last, never adds to it). Our ``input_tokens`` is the whole prompt:
    Anthropic's uncached ``input_tokens`` plus ``cache_read_input_tokens`` plus
    ``cache_creation_input_tokens``; ``cached_tokens`` is ``cache_read_input_tokens``, a part of it.
    Anthropic reports no separate thinking token count, so ``reasoning_tokens`` stays 0.
    """

    _USAGE_FIELDS = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    )

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._tool_calls = ToolCallAssembler()
        self._tool_inputs: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        self._stopped = False

    def feed(self, event: Any) -> list[LLMEvent]:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            self._model = getattr(message, "model", None) or self._model
            self._take_usage(getattr(message, "usage", None))
        elif kind == "content_block_start":
            return self._block_start(int(event.index), event.content_block)
        elif kind == "content_block_delta":
            return self._block_delta(int(event.index), event.delta)
        elif kind == "content_block_stop":
            index = int(event.index)
            return self._tool_calls.end(index, default_arguments=self._tool_inputs.pop(index, None))
        elif kind == "message_delta":
            self._stop_reason = getattr(event.delta, "stop_reason", None) or self._stop_reason
            self._take_usage(getattr(event, "usage", None))
        elif kind == "message_stop":
            self._stopped = True
        return []

    def finish(self) -> list[LLMEvent]:
        """The closing events. Raises LLMProviderError if ``message_stop`` never came: the stream was cut."""
        if not self._stopped:
            raise stream_cut_error(PROVIDER)
        events = self._tool_calls.end_all()
        cache_read = self._usage.get("cache_read_input_tokens", 0)
        usage = Usage(
            input_tokens=self._usage.get("input_tokens", 0)
            + cache_read
            + self._usage.get("cache_creation_input_tokens", 0),
            output_tokens=self._usage.get("output_tokens", 0),
            cached_tokens=cache_read,
        )
        reason = self._stop_reason or "stop"
        events.append(
            StepFinished(usage=usage, finish_reason=_FINISH_REASONS.get(reason, reason), model=self._model)
        )
        return events

    def _take_usage(self, usage: Any) -> None:
        for name in self._USAGE_FIELDS:
            value = getattr(usage, name, None)
            if value is not None:
                self._usage[name] = int(value)

    def _block_start(self, index: int, block: Any) -> list[LLMEvent]:
        kind = getattr(block, "type", None)
        if kind == "tool_use":
            initial = getattr(block, "input", None)
            if isinstance(initial, dict) and initial:
                self._tool_inputs[index] = initial
            return self._tool_calls.feed(index, id=block.id, name=block.name)
        if kind == "text" and getattr(block, "text", None):
            return [TextDelta(text=block.text)]
        if kind == "thinking" and getattr(block, "thinking", None):
            return [ReasoningDelta(text=block.thinking)]
        return []  # redacted thinking, server tools: nothing for the engine to act on

    def _block_delta(self, index: int, delta: Any) -> list[LLMEvent]:
        kind = getattr(delta, "type", None)
        if kind == "text_delta" and delta.text:
            return [TextDelta(text=delta.text)]
        if kind == "thinking_delta" and delta.thinking:
            return [ReasoningDelta(text=delta.thinking)]
        if kind == "input_json_delta" and delta.partial_json:
            return self._tool_calls.feed(index, arguments=delta.partial_json)
        return []  # signature_delta, citations_delta
