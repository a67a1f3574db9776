"""Agents: what a session runs — a system prompt, tools, typed state and an optional structured output."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import BaseModel, TypeAdapter, ValidationError

from .llm import ToolSpec
from .tools import Tool

__all__ = ["Agent", "OutputValidationError"]

_STATE_DICT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
# A fenced block anywhere in the answer: ```json ... ``` or ``` ... ```.
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n?(.*?)```", re.DOTALL | re.IGNORECASE)


class OutputValidationError(Exception):
    """The model's final answer does not match the agent's ``output_schema``.

    Not a :class:`helix.errors.HelixError`: the engine first shows the message to the model so that it can
    answer again, and fails the run only if the second answer is invalid too. ``details`` is pydantic's
    error list (JSON-ready) when the answer was JSON of the wrong shape, else ``None``.
    """

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True, kw_only=True, eq=False)
class Agent:
    """An agent definition; immutable and shared by every session that runs it.

    ``system_prompt`` is a string or a function of the current state returning one. ``state_schema``
    types the session state (without one the state is a JSON object, a plain dict); ``output_schema``
    makes the run's output a validated model instead of the final text. ``max_steps`` bounds the model
    steps of one run (the run then ends ``interrupted`` with reason ``max_steps``); ``model`` is passed to
    the adapter as ``StepRequest.model``. Change a copy with ``dataclasses.replace``.

    Raises ``ValueError`` for an empty name, ``max_steps < 1`` or two tools with the same name, and
    ``TypeError`` for arguments of the wrong kind (a tool that is not a :class:`Tool` — decorate it with
    ``@tool`` —, a schema that is not a pydantic model class); pydantic's errors for an
    ``output_schema`` that has no JSON schema.
    """

    name: str
    system_prompt: str | Callable[[Any], str] = ""
    tools: Sequence[Tool] = ()
    state_schema: type[BaseModel] | None = None
    output_schema: type[BaseModel] | None = None
    max_steps: int = 25
    model: str | None = None
    _tools_by_name: dict[str, Tool] = field(init=False, repr=False)
    _tool_specs: tuple[ToolSpec, ...] = field(init=False, repr=False)
    _output_json_schema: dict[str, Any] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"an agent needs a non-empty name, got {self.name!r}")
        if not isinstance(self.system_prompt, str) and not callable(self.system_prompt):
            raise TypeError("system_prompt must be a string or a function of the state returning one")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int):
            raise TypeError(f"max_steps must be an int, got {self.max_steps!r}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        for label, schema in (("state_schema", self.state_schema), ("output_schema", self.output_schema)):
            if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
                raise TypeError(f"{label} must be a pydantic BaseModel subclass or None, got {schema!r}")
        if self.model is not None and not isinstance(self.model, str):
            raise TypeError(f"model must be a string or None, got {self.model!r}")
        tools = tuple(self.tools)
        by_name: dict[str, Tool] = {}
        for item in tools:
            if not isinstance(item, Tool):
                raise TypeError(f"agent {self.name!r}: {item!r} is not a Tool; decorate it with @tool")
            if item.name in by_name:
                raise ValueError(f"agent {self.name!r} has two tools named {item.name!r}; rename one")
            by_name[item.name] = item
        object.__setattr__(self, "tools", tools)
        object.__setattr__(self, "_tools_by_name", by_name)
        object.__setattr__(self, "_tool_specs", tuple(item.spec for item in tools))
        # Generated once: the engine sends it with every step.
        output_json_schema = None if self.output_schema is None else self.output_schema.model_json_schema()
        object.__setattr__(self, "_output_json_schema", output_json_schema)

    def render_system_prompt(self, state: Any) -> str:
        """The system prompt for the current ``state``; raises ``TypeError`` if the function returns a
        non-string (and whatever the function raises)."""
        if isinstance(self.system_prompt, str):
            return self.system_prompt
        prompt = self.system_prompt(state)
        if not isinstance(prompt, str):
            raise TypeError(f"agent {self.name!r}: system_prompt returned {type(prompt).__name__}, not str")
        return prompt

    def tool(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None`` (the engine answers an unknown tool with an error result)."""
        return self._tools_by_name.get(name)

    def tool_specs(self) -> tuple[ToolSpec, ...]:
        """The tools as the model sees them, in the order they were given."""
        return self._tool_specs

    def initial_state(self) -> Any:
        """The state of a new session when the caller gives none.

        Without ``state_schema``: ``{}``. With one: ``state_schema()`` when every field has a default,
        else ``None``, meaning the caller must provide a state (the engine rejects a start without one).
        """
        if self.state_schema is None:
            return {}
        try:
            return self.state_schema()
        except ValidationError:
            return None

    def validate_state(self, value: Mapping[str, Any] | BaseModel | None) -> Any:
        """Check a state given by a caller and return the agent's own copy of it.

        With ``state_schema``: a new instance of it, validated from a dict, any pydantic model (through
        its dump) or ``None`` (the schema's defaults); raises pydantic's ``ValidationError`` when invalid.
        Without: a JSON-ready copy of the dict (``None`` gives ``{}``, a model gives its JSON dump); raises
        ``ValidationError`` for a non-dict and ``ValueError`` for values JSON cannot represent.
        """
        if self.state_schema is not None:
            if value is None:
                return self.state_schema()
            if isinstance(value, BaseModel):
                return self.state_schema.model_validate(value.model_dump())
            return self.state_schema.model_validate(value)
        if value is None:
            return {}
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        return pydantic_core.to_jsonable_python(_STATE_DICT.validate_python(value))

    def dump_state(self, state: Any) -> dict[str, Any] | None:
        """The state as a JSON-ready dict (``None`` stays ``None``); raises ``ValueError`` for values JSON
        cannot represent."""
        if state is None:
            return None
        if isinstance(state, BaseModel):
            return state.model_dump(mode="json")
        dumped = pydantic_core.to_jsonable_python(state)
        if not isinstance(dumped, dict):
            raise ValueError(f"agent {self.name!r}: a state is a JSON object, not {type(state).__name__}")
        return dumped

    def output_json_schema(self) -> dict[str, Any] | None:
        """The JSON schema of ``output_schema`` (sent to the model as ``StepRequest.output_schema``), or
        ``None`` when the agent answers in plain text. Generated once and shared: treat it as read-only."""
        return self._output_json_schema

    def parse_output(self, text: str) -> Any:
        """The run's output from the model's final answer.

        Without ``output_schema``: the text itself. With one: the answer parsed as JSON and validated into
        an ``output_schema`` instance. Surrounding whitespace is ignored, and when the answer is not bare
        JSON, the first fenced block (```` ```json ... ``` ```` or ```` ``` ... ``` ````) is used instead.
        Raises :class:`OutputValidationError` when the answer is not JSON or does not match the schema.
        """
        if self.output_schema is None:
            return text
        candidate = text.strip()
        fenced = _FENCE.search(candidate)
        if fenced is not None and not candidate.startswith(("{", "[")):
            candidate = fenced.group(1).strip()
        schema_name = self.output_schema.__name__
        try:
            return self.output_schema.model_validate_json(candidate)
        except ValidationError as exc:
            details: list[dict[str, Any]] = pydantic_core.from_json(exc.json(include_url=False))
            if any(error.get("type") == "json_invalid" for error in details):
                message = (
                    f"the final answer is not valid JSON; answer with only a JSON object matching the "
                    f"{schema_name} schema"
                )
                raise OutputValidationError(message) from None
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error.get('loc', ())) or '(root)'}: {error.get('msg', '')}"
                for error in details
            )
            message = (
                f"the final answer does not match the {schema_name} schema: {problems}; answer again with "
                "only a JSON object matching the schema"
            )
            raise OutputValidationError(message, details=details) from None
