"""Tool calls assembled from streamed fragments, shared by the provider adapters.

Both providers stream a tool call as a head (id and name) and then its JSON arguments in pieces, keyed by
an index: OpenAI by ``tool_calls[].index``, Anthropic by the content block index. :class:`ToolCallAssembler`
turns those pieces into our events: :class:`ToolCallStart` once the id and name are known,
:class:`ToolCallDelta` per argument fragment, and :class:`ToolCallEnd` with the strictly parsed arguments.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from helix.llm import LLMEvent, ToolCallDelta, ToolCallEnd, ToolCallStart


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_tool_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """Decode a tool call's argument text strictly: ``(arguments, None)`` or ``({}, error)``.

    Empty text means a call without arguments. NaN and Infinity, which Python's json module accepts by
    default, are refused: they are not JSON and no tool schema can ask for them.
    """
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError, and so is _reject_constant's
        return {}, f"tool call arguments are not valid JSON ({exc}); send a JSON object"
    if not isinstance(value, dict):
        return {}, f"tool call arguments must be a JSON object, not {type(value).__name__}"
    return value, None


@dataclass
class _PendingCall:
    id: str | None = None
    name: str | None = None
    started: bool = False
    arguments: list[str] = field(default_factory=list)
    ended: bool = False


class ToolCallAssembler:
    """Tool calls of one step, keyed by the provider's index, in the order they first appeared."""

    def __init__(self) -> None:
        self._calls: dict[int, _PendingCall] = {}

    def feed(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
    ) -> list[LLMEvent]:
        """Take one fragment of call ``index``; return the events it completes.

        Arguments that arrive before the id and name are held back, so a consumer always sees
        ``ToolCallStart`` before any ``ToolCallDelta`` of that call.
        """
        call = self._calls.setdefault(index, _PendingCall())
        events: list[LLMEvent] = []
        if id and call.id is None:
            call.id = id
        if name and call.name is None:
            call.name = name
        if not call.started and call.id is not None and call.name is not None:
            events.extend(self._start(call))
        if arguments:
            call.arguments.append(arguments)
            if call.started:
                assert call.id is not None
                events.append(ToolCallDelta(id=call.id, arguments_delta=arguments))
        return events

    def end(self, index: int, *, default_arguments: dict[str, Any] | None = None) -> list[LLMEvent]:
        """Close call ``index`` (no-op for an unknown or closed one). ``default_arguments`` stand in when no
        argument text was streamed (Anthropic puts ``input`` on the block start)."""
        call = self._calls.get(index)
        if call is None or call.ended:
            return []
        call.ended = True
        events: list[LLMEvent] = []
        if not call.started:
            # Some OpenAI-compatible servers omit the call id; the engine needs one to pair the result.
            if call.id is None:
                call.id = f"call_{uuid.uuid4().hex[:24]}"
            events.extend(self._start(call))
        assert call.id is not None
        text = "".join(call.arguments)
        if not text and default_arguments is not None:
            arguments, error = dict(default_arguments), None
        else:
            arguments, error = parse_tool_arguments(text)
        if call.name is None:
            error = "the model sent a tool call without a tool name"
        events.append(ToolCallEnd(id=call.id, name=call.name or "", arguments=arguments, error=error))
        return events

    def end_all(self) -> list[LLMEvent]:
        """Close every open call, in index order."""
        events: list[LLMEvent] = []
        for index in sorted(self._calls):
            events.extend(self.end(index))
        return events

    def _start(self, call: _PendingCall) -> list[LLMEvent]:
        assert call.id is not None
        call.started = True
        events: list[LLMEvent] = [ToolCallStart(id=call.id, name=call.name or "")]
        if call.arguments:
            events.append(ToolCallDelta(id=call.id, arguments_delta="".join(call.arguments)))
        return events
