"""The model side of an agent step: conversation types, the step request, stream events, the adapter protocol.

An :class:`LLMAdapter` turns one :class:`StepRequest` into a stream of :data:`LLMEvent` values. The engine
calls the adapter factory ``(env, LLMAdapterContext) -> LLMAdapter`` once per run and ``stream_step`` once
per step. Cancellation (interrupt, abort, shutdown) is trio cancellation: the engine closes the iterator,
and an adapter must release its HTTP stream when that happens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A tool call the model asked for; ``arguments`` is the decoded JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Message:
    """One conversation message. ``id`` is set once the message is stored."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    id: str | None = None


class Usage(BaseModel):
    """Token counts of one model call. ``cached_tokens`` and ``reasoning_tokens`` are parts of the
    input and output counts as the provider reports them, not additions to them."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A tool as the model sees it: name, description and the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StepRequest:
    """Everything one model step needs. ``step`` counts from 1 within the run."""

    system_prompt: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    model: str | None = None
    output_schema: dict[str, Any] | None = None
    step: int = 1


@dataclass(frozen=True, kw_only=True)
class TextDelta:
    text: str


@dataclass(frozen=True, kw_only=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, kw_only=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class ToolCallDelta:
    id: str
    arguments_delta: str


@dataclass(frozen=True, kw_only=True)
class ToolCallEnd:
    """A complete tool call. Arguments that were not a JSON object arrive as ``{}`` with ``error`` set;
    the engine answers such a call with an error result so the model can correct itself."""

    id: str
    name: str
    arguments: dict[str, Any]
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepFinished:
    """The last event of a step."""

    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    model: str | None = None


LLMEvent: TypeAlias = TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | StepFinished


@dataclass(frozen=True, kw_only=True)
class LLMAdapterContext:
    """Who a run's adapter works for; given to the adapter factory once per run."""

    session_id: str
    agent_type: str
    run_id: str


class LLMAdapter(Protocol):
    """A model behind one narrow method."""

    def stream_step(self, request: StepRequest) -> AsyncIterator[LLMEvent]:
        """Stream one model step. The last event is :class:`StepFinished`. Raise
        :class:`helix.errors.LLMProviderError` for provider failures (after the adapter's own retries)."""
        ...


AdapterFactory: TypeAlias = Callable[[Any, LLMAdapterContext], LLMAdapter]
"""``(env, ctx) -> LLMAdapter``: called once per run with the server's ``env``."""
