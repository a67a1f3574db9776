"""An offline, deterministic LLM adapter that plays a script: for tests, examples and benchmarks."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import trio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from helix.llm import (
    LLMEvent,
    ReasoningDelta,
    StepFinished,
    StepRequest,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

__all__ = ["ScriptFunction", "ScriptedAdapter", "ScriptedStep", "ScriptedToolCall", "StepLike"]


class ScriptedToolCall(BaseModel):
    """A tool call the scripted model makes; ``arguments`` must be JSON-serializable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments")
    @classmethod
    def _json_ready(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"tool call arguments must be JSON-serializable: {exc}") from exc
        return value


class ScriptedStep(BaseModel):
    """One answer of the scripted model: optional reasoning, text, tool calls, and optional usage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    reasoning: str = ""


StepLike: TypeAlias = ScriptedStep | Mapping[str, Any] | BaseModel
"""A step: a :class:`ScriptedStep`, a dict with its fields, or another pydantic model with its fields."""

ScriptFunction: TypeAlias = Callable[[StepRequest], StepLike | Awaitable[StepLike]]
"""``(request) -> step``, sync or async."""


class ScriptedAdapter:
    """An :class:`helix.llm.LLMAdapter` that answers from a script, offline and deterministically.

    ``script`` is a non-empty list of steps, or a function ``(StepRequest) -> step`` (sync or async). A
    step is a dict ``{"text": str, "tool_calls": [{"name": str, "arguments": dict}], "usage": {...},
    "reasoning": str}`` (every key optional; unknown keys are rejected) or a :class:`ScriptedStep` or
    another pydantic model with those fields. A list is validated here: a bad step raises ``ValueError``
    naming its index (a ``TypeError`` if ``script`` is neither a list nor a function); a step returned by
    a function is validated when it is used, and an invalid one makes ``stream_step`` raise ``ValueError``.

    Step ``k`` of a conversation (``k`` = the number of assistant messages in ``request.messages``, so a
    resumed or branched run replays deterministically) plays ``script[k]``; past the end, the last step.

    Events of one step, in order: ``ReasoningDelta`` chunks, ``TextDelta`` chunks (both of at most
    ``chars_per_chunk`` characters), then for each tool call ``i`` a ``ToolCallStart``, one
    ``ToolCallDelta`` with the compact JSON of its arguments and a ``ToolCallEnd``, all with id
    ``call_<k>_<i>`` (unique within a conversation), and last ``StepFinished`` with ``finish_reason``
    ``"tool_calls"`` or ``"stop"`` and ``model`` = ``request.model`` or ``"scripted"``. With ``delay > 0``
    every event is preceded by ``trio.sleep(delay)``, so a step of ``E`` events takes ``E * delay``
    seconds (of trio time: ``MockClock`` works); with ``delay == 0`` it never sleeps.

    Usage is the step's ``usage`` when given, else computed by this rule (characters / 4, rounded down):
    ``input_tokens = max(1, (len(system_prompt) + sum of len(message.content)) // 4)``,
    ``output_tokens = max(1, (len(text) + len(reasoning) + sum of len(name) + len(arguments JSON) per
    tool call) // 4)``, ``reasoning_tokens = len(reasoning) // 4`` (part of the output, as providers
    count it), ``cached_tokens = 0``.

    :attr:`requests` records every request received, in order, for tests to inspect.
    """

    def __init__(
        self,
        script: Sequence[StepLike] | ScriptFunction,
        *,
        chars_per_chunk: int = 8,
        delay: float = 0.0,
    ) -> None:
        if isinstance(chars_per_chunk, bool) or not isinstance(chars_per_chunk, int) or chars_per_chunk < 1:
            raise ValueError(f"chars_per_chunk must be an int of at least 1, got {chars_per_chunk!r}")
        if not isinstance(delay, int | float) or delay < 0:
            raise ValueError(f"delay must be a number of seconds >= 0, got {delay!r}")
        self._chars_per_chunk = chars_per_chunk
        self._delay = float(delay)
        self._function: ScriptFunction | None = None
        self._steps: tuple[ScriptedStep, ...] = ()
        if callable(script):
            self._function = script
        elif isinstance(script, Sequence) and not isinstance(script, str | bytes):
            if not script:
                raise ValueError("a script needs at least one step")
            self._steps = tuple(_to_step(step, f"script step {index}") for index, step in enumerate(script))
        else:
            raise TypeError(f"script must be a list of steps or a function of the request, got {script!r}")
        self._requests: list[StepRequest] = []

    @property
    def requests(self) -> tuple[StepRequest, ...]:
        """Every request :meth:`stream_step` has received, oldest first."""
        return tuple(self._requests)

    async def stream_step(self, request: StepRequest) -> AsyncIterator[LLMEvent]:
        """Play step ``k`` of the script for ``request`` (see the class docstring for the events).

        Raises ``ValueError`` when a script function returns an invalid step, and whatever it raises.
        """
        self._requests.append(request)
        index = sum(1 for message in request.messages if message.role == "assistant")
        if self._function is not None:
            produced = self._function(request)
            if inspect.isawaitable(produced):
                produced = await produced
            step = _to_step(produced, f"the step the script function returned for step {index}")
        else:
            step = self._steps[min(index, len(self._steps) - 1)]
        for event in self._events(step, index, request):
            if self._delay > 0:
                await trio.sleep(self._delay)
            yield event

    def _events(self, step: ScriptedStep, index: int, request: StepRequest) -> Iterator[LLMEvent]:
        for piece in _chunks(step.reasoning, self._chars_per_chunk):
            yield ReasoningDelta(text=piece)
        for piece in _chunks(step.text, self._chars_per_chunk):
            yield TextDelta(text=piece)
        call_chars = 0
        for position, call in enumerate(step.tool_calls):
            call_id = f"call_{index}_{position}"
            arguments_json = json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))
            call_chars += len(call.name) + len(arguments_json)
            yield ToolCallStart(id=call_id, name=call.name)
            yield ToolCallDelta(id=call_id, arguments_delta=arguments_json)
            # A fresh decoded copy: the consumer may keep or change it without touching the script.
            yield ToolCallEnd(id=call_id, name=call.name, arguments=json.loads(arguments_json))
        usage = step.usage
        if usage is None:
            input_chars = len(request.system_prompt)
            input_chars += sum(len(message.content) for message in request.messages)
            usage = Usage(
                input_tokens=max(1, input_chars // 4),
                output_tokens=max(1, (len(step.text) + len(step.reasoning) + call_chars) // 4),
                cached_tokens=0,
                reasoning_tokens=len(step.reasoning) // 4,
            )
        yield StepFinished(
            usage=usage,
            finish_reason="tool_calls" if step.tool_calls else "stop",
            model=request.model or "scripted",
        )


def _to_step(value: object, where: str) -> ScriptedStep:
    if isinstance(value, ScriptedStep):
        return value
    try:
        if isinstance(value, BaseModel):
            return ScriptedStep.model_validate(value.model_dump())
        if isinstance(value, Mapping):
            return ScriptedStep.model_validate(dict(value))
    except ValidationError as exc:
        raise ValueError(f"{where} is invalid: {exc}") from exc
    raise ValueError(f"{where} must be a dict or a ScriptedStep, got {type(value).__name__}")


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]
