"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp, LM Studio, OpenRouter) over Chat
Completions streaming, on the official ``openai`` SDK (``pip install 'helix-agents[openai]'``).

The SDK's async client runs on httpx and anyio, so it works under trio as it is. Retries with backoff for
rate limits, overload and 5xx are the SDK's own (``max_retries``); what is left after them, and any refusal
such as 401 or 400, is raised as :class:`helix.errors.LLMProviderError` with ``provider="openai"``.
"""

from __future__ import annotations

import json
import re
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

PROVIDER = "openai"

# OpenAI-compatible servers stream reasoning under one of these delta fields (vLLM, DeepSeek and
# llama.cpp use `reasoning_content`; Ollama and OpenRouter use `reasoning`).
_REASONING_FIELDS = ("reasoning_content", "reasoning")


class OpenAIAdapter(SDKClientAdapter):
    """An :class:`helix.llm.LLMAdapter` for the Chat Completions API.

    ``base_url`` has the SDK's meaning: the API root including ``/v1`` (for example
    ``http://localhost:11434/v1`` for Ollama). ``client`` is an ``openai.AsyncOpenAI`` to share one
    connection pool between adapters; then ``api_key`` and ``base_url`` must be left unset.
    ``max_retries`` is the SDK's retry budget for this adapter's requests, also on a given client.
    ``params`` go to ``chat.completions.create`` (``temperature``, ``max_completion_tokens``, ...); a field
    the SDK has no parameter for (``top_k`` of a local server) goes into the JSON body through
    ``extra_body``. ``stream_options`` replaces the default ``{"include_usage": True}``; ``None`` leaves it
    out, for servers that refuse it (then usage is whatever the server reports, possibly zero).

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
        **params: Any,
    ) -> None:
        super().__init__(
            sdk_module="openai",
            client_class="AsyncOpenAI",
            adapter="OpenAIAdapter",
            model=model,
            api_key=api_key,
            base_url=base_url,
            client=client,
            max_retries=max_retries,
            params=params,
        )

    def request_body(self, request: StepRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        body: dict[str, Any] = {"stream_options": {"include_usage": True}, **self.params}
        body["model"] = request.model or self.model
        body["messages"] = to_openai_messages(request.system_prompt, request.messages)
        if request.tools:
            body["tools"] = [to_openai_tool(spec) for spec in request.tools]
        if request.output_schema is not None:
            body["response_format"] = to_openai_response_format(request.output_schema)
        body["stream"] = True
        if body["stream_options"] is None:
            del body["stream_options"]  # for servers that refuse the field
        return body

    async def stream_step(self, request: StepRequest) -> AsyncGenerator[LLMEvent, None]:
        """Stream one step. Raises :class:`helix.errors.LLMProviderError` when the provider refuses the
        request, fails after the SDK's retries, or the stream ends before its finish reason."""
        body = self.request_body(request)
        create = self._client.chat.completions.create
        stream = await open_stream(
            create(**fit_params(create, body)),
            sdk=self._sdk,
            provider=PROVIDER,
            max_retries=self.max_retries,
        )
        step = OpenAIStreamMapper(model=body["model"])
        chunks = read_stream(stream, sdk=self._sdk, provider=PROVIDER, max_retries=self.max_retries)
        async with aclosing(chunks):
            async for chunk in chunks:
                for event in step.feed(chunk):
                    yield event
        for event in step.finish():
            yield event


def to_openai_messages(system_prompt: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our conversation as Chat Completions messages: the system prompt first, assistant tool calls with
    their arguments as JSON strings, tool results as ``role: "tool"`` messages."""
    out: list[dict[str, Any]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    # null, not "": some compatible servers reject empty content next to tool calls.
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        elif message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def to_openai_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    }


def to_openai_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """Structured output as ``response_format``. Not ``strict``: strict mode accepts only schemas with
    every property required and ``additionalProperties: false``, which pydantic does not produce."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


class OpenAIStreamMapper:
    """Chat Completions chunks of one step to our events.

    Chunks are read with ``getattr``: the SDK builds them without validation, and compatible servers
    leave out fields (a tool call ``index``, ``usage``) or add their own (``reasoning_content``).
    """

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._tool_calls = ToolCallAssembler()
        self._unindexed: dict[str, int] = {}  # call id -> our index, for servers that send no index
        self._last_unindexed = 0
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    def feed(self, chunk: Any) -> list[LLMEvent]:
        events: list[LLMEvent] = []
        self._model = getattr(chunk, "model", None) or self._model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            # The final chunk carries the usage of the whole call (some servers repeat it on every
            # chunk, cumulatively): keep the last one.
            self._usage = _usage(usage)
        for choice in getattr(chunk, "choices", None) or ():
            if (getattr(choice, "index", 0) or 0) != 0:
                continue  # we ask for one choice
            delta = getattr(choice, "delta", None)
            if delta is not None:
                events.extend(self._delta(delta))
            finish_reason = getattr(choice, "finish_reason", None)
            if finish_reason:
                self._finish_reason = str(finish_reason)
        return events

    def finish(self) -> list[LLMEvent]:
        """The closing events. Raises LLMProviderError if the stream never gave a finish reason: every
        server sends one before ``[DONE]``, so a stream without it was cut."""
        if self._finish_reason is None:
            raise stream_cut_error(PROVIDER)
        events = self._tool_calls.end_all()
        events.append(
            StepFinished(usage=self._usage or Usage(), finish_reason=self._finish_reason, model=self._model)
        )
        return events

    def _delta(self, delta: Any) -> list[LLMEvent]:
        events: list[LLMEvent] = []
        for name in _REASONING_FIELDS:
            reasoning = getattr(delta, name, None)
            if isinstance(reasoning, str) and reasoning:
                events.append(ReasoningDelta(text=reasoning))
                break
        content = getattr(delta, "content", None)
        if content:
            events.append(TextDelta(text=content))
        refusal = getattr(delta, "refusal", None)
        if refusal:
            events.append(TextDelta(text=refusal))
        for call in getattr(delta, "tool_calls", None) or ():
            index = getattr(call, "index", None)
            call_id = getattr(call, "id", None)
            function = getattr(call, "function", None)
            events.extend(
                self._tool_calls.feed(
                    self._unindexed_key(call_id) if index is None else int(index),
                    id=call_id,
                    name=getattr(function, "name", None),
                    arguments=getattr(function, "arguments", None),
                )
            )
        return events

    def _unindexed_key(self, call_id: str | None) -> int:
        # Without an index, a new id starts a new call and a fragment without id continues the last one.
        if call_id is None:
            return self._last_unindexed
        if call_id not in self._unindexed:
            self._unindexed[call_id] = len(self._unindexed)
        self._last_unindexed = self._unindexed[call_id]
        return self._last_unindexed


def _usage(usage: Any) -> Usage:
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=getattr(usage, "prompt_tokens", None) or 0,
        output_tokens=getattr(usage, "completion_tokens", None) or 0,
        cached_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
    )
