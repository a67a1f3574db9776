"""Tools: async functions the model may call, with arguments validated by pydantic.

``@tool`` turns an ``async def`` with annotated parameters into a :class:`Tool`. The JSON schema the model
sees is generated from the signature; a parameter annotated :class:`ToolContext` is left out of it and
receives the context of the call instead::

    @tool
    async def lookup_order(order_id: str, ctx: ToolContext, verbose: bool = False) -> Order:
        \"\"\"Look an order up by its id.\"\"\"
        await ctx.emit("lookup", {"order_id": order_id})
        return await orders.get(order_id)

Exceptions a tool raises (including :class:`ToolArgumentsError`) are not runtime errors: the engine turns
them into a ``tool_result`` with ``isError`` so that the model sees them and can correct itself.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .llm import ToolSpec

__all__ = ["Tool", "ToolArgumentsError", "ToolContext", "tool", "tool_result_text"]

ToolFunction = Callable[..., Awaitable[Any]]

# The name rule OpenAI and Anthropic both enforce; checking it here fails at import time, not mid-run.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ToolArgumentsError(Exception):
    """The model called a tool with arguments that do not match its schema.

    Not a :class:`helix.errors.HelixError`: it is meant for the model, which sees the message and can call
    the tool again. ``details`` is pydantic's error list (JSON-ready: ``type``, ``loc``, ``msg``,
    ``input``, and ``ctx`` where pydantic gives one).
    """

    def __init__(self, tool_name: str, details: list[dict[str, Any]]) -> None:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ())) or 'arguments'}: {error.get('msg', '')}"
            for error in details
        )
        super().__init__(
            f"invalid arguments for tool {tool_name!r}: {problems}; call it again with arguments that match "
            "its parameter schema"
        )
        self.tool_name = tool_name
        self.details = details


class ToolContext:
    """What a tool call may know and do besides its arguments; built by the engine for each call.

    A tool receives it by declaring a parameter annotated ``ToolContext``. Cancellation is trio's: an
    interrupt or abort cancels the tool through the run's cancel scope, so a tool needs nothing special to
    be cancellable (and must let ``trio.Cancelled`` propagate).
    """

    __slots__ = ("_emit", "_get_state", "_update_state", "run_id", "session_id", "tool_call_id")

    def __init__(
        self,
        *,
        session_id: str,
        run_id: str,
        tool_call_id: str,
        get_state: Callable[[], Any],
        update_state: Callable[[dict[str, Any]], Awaitable[None]],
        emit: Callable[[str, Any], Awaitable[None]],
    ) -> None:
        self.session_id = session_id
        self.run_id = run_id
        self.tool_call_id = tool_call_id
        self._get_state = get_state
        self._update_state = update_state
        self._emit = emit

    @property
    def state(self) -> Any:
        """The current state (a ``state_schema`` instance, or a dict for agents without one), including
        updates made earlier in this run, by this tool or others."""
        return self._get_state()

    async def update_state(self, patch: dict[str, Any]) -> None:
        """Merge ``patch`` (top-level keys) into the state.

        The engine validates the merged state against the agent's ``state_schema`` and emits a
        ``state_patch`` chunk (none when nothing changed). It raises ``ValueError`` when the merged state
        is invalid, and then the state is unchanged.
        """
        await self._update_state(patch)

    async def emit(self, type: str, payload: Any = None) -> None:
        """Emit a ``custom`` chunk with this ``type`` and a JSON-ready ``payload`` into the session stream."""
        await self._emit(type, payload)

    def __repr__(self) -> str:
        return (
            f"ToolContext(session_id={self.session_id!r}, run_id={self.run_id!r}, "
            f"tool_call_id={self.tool_call_id!r})"
        )


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A tool the model can call: the schema it sees and the function that runs.

    Build one with :func:`tool` (or :meth:`Tool.from_function`). ``parameters`` is the JSON schema of the
    arguments object; treat it as read-only. ``function`` is the original coroutine function, for tests
    that want to call it directly.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction = field(repr=False)
    _arguments: type[BaseModel] = field(repr=False, compare=False)
    # (parameter name, model field name or None for a ToolContext, positional-only?) in signature order.
    _bindings: tuple[tuple[str, str | None, bool], ...] = field(repr=False, compare=False)

    @classmethod
    def from_function(
        cls, function: ToolFunction, *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """Build a tool from an ``async def``; see :func:`tool` for the rules and what it raises."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"@tool needs an async def; {_describe(function)} is not a coroutine function")
        tool_name = function.__name__ if name is None else name
        if not isinstance(tool_name, str) or not _TOOL_NAME.fullmatch(tool_name):
            raise ValueError(
                f"invalid tool name {tool_name!r}: use 1-64 letters, digits, '_' or '-' (pass name=...)"
            )
        if description is None:
            description = inspect.cleandoc(function.__doc__) if function.__doc__ else ""
        signature = inspect.signature(function)
        try:
            hints = typing.get_type_hints(function, include_extras=True)
        except Exception as exc:
            raise TypeError(f"cannot resolve the annotations of tool {tool_name!r}: {exc}") from exc

        fields: dict[str, Any] = {}
        bindings: list[tuple[str, str | None, bool]] = []
        for index, parameter in enumerate(signature.parameters.values()):
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(
                    f"tool {tool_name!r}: *{parameter.name} / **{parameter.name} parameters cannot be "
                    "described to the model; declare each argument as a typed parameter"
                )
            positional_only = parameter.kind is inspect.Parameter.POSITIONAL_ONLY
            if parameter.name not in hints:
                raise TypeError(
                    f"tool {tool_name!r}: parameter {parameter.name!r} has no type annotation; the model "
                    "needs a type for every argument"
                )
            hint = hints[parameter.name]
            if hint is ToolContext:
                bindings.append((parameter.name, None, positional_only))
                continue
            # Fields get neutral names and the parameter name as alias, so that parameters such as `json`
            # or `model_name` do not collide with BaseModel attributes.
            field_name = f"p{index}"
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            fields[field_name] = (typing.Annotated[hint, Field(alias=parameter.name)], default)
            bindings.append((parameter.name, field_name, positional_only))
        try:
            arguments = create_model(
                tool_name,
                __config__=ConfigDict(extra="forbid"),
                **fields,
            )
            parameters = arguments.model_json_schema()
        except Exception as exc:
            raise TypeError(
                f"tool {tool_name!r}: its parameters cannot be described as JSON schema: {exc}"
            ) from exc
        return cls(
            name=tool_name,
            description=description,
            parameters=parameters,
            function=function,
            _arguments=arguments,
            _bindings=tuple(bindings),
        )

    @property
    def spec(self) -> ToolSpec:
        """The tool as the model sees it."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Validate ``arguments`` and call the function; return what it returns.

        Values are converted as pydantic does in lax mode (``"5"`` for an ``int`` becomes ``5``); missing
        optional arguments take the parameter's default; unknown argument names are rejected. Raises
        :class:`ToolArgumentsError` when validation fails (the function is not called), and whatever the
        function raises.
        """
        try:
            validated = self._arguments.model_validate(arguments)
        except ValidationError as exc:
            details: list[dict[str, Any]] = json.loads(exc.json(include_url=False))
            raise ToolArgumentsError(self.name, details) from None
        positional: list[Any] = []
        keyword: dict[str, Any] = {}
        for parameter_name, field_name, positional_only in self._bindings:
            value = ctx if field_name is None else getattr(validated, field_name)
            if positional_only:
                positional.append(value)
            else:
                keyword[parameter_name] = value
        return await self.function(*positional, **keyword)


@overload
def tool(function: ToolFunction, /) -> Tool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[ToolFunction], Tool]: ...


def tool(
    function: ToolFunction | None = None, /, *, name: str | None = None, description: str | None = None
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a :class:`Tool` of an ``async def``: ``@tool`` or ``@tool(name=..., description=...)``.

    The name defaults to the function's name; the description to its whole docstring, cleaned with
    ``inspect.cleandoc`` (so an ``Args:`` section reaches the model too), or ``""`` without one. Every
    parameter needs an annotation (``Annotated[int, Field(ge=0, description=...)]`` works); a parameter
    with a default is optional in the schema; a parameter annotated ``ToolContext`` is left out of the
    schema and receives the call's context. String annotations (``from __future__ import annotations``)
    are resolved with ``typing.get_type_hints``.

    Checked when applied: raises ``TypeError`` for a function that is not ``async def``, a parameter
    without annotation (naming it), ``*args`` / ``**kwargs``, or annotations that cannot be resolved or
    described as JSON schema; ``ValueError`` for a name other than 1-64 letters, digits, ``_`` or ``-``.
    """
    if function is not None:
        return Tool.from_function(function, name=name, description=description)

    def decorate(function: ToolFunction) -> Tool:
        return Tool.from_function(function, name=name, description=description)

    return decorate


def tool_result_text(value: Any) -> str:
    """The content of the tool message that carries a tool's return value to the model.

    A ``str`` is used as it is; a pydantic model becomes its ``model_dump_json()``; anything else becomes
    compact JSON with non-ASCII characters kept (dataclasses, datetimes, sets and nested models are
    serialized as pydantic serializes them; ``None`` is ``"null"``). A value JSON cannot represent is
    written as its ``str()``, so a tool's result never fails the run.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return pydantic_core.to_json(value, serialize_unknown=True).decode("utf-8")


def _describe(function: object) -> str:
    return getattr(function, "__qualname__", None) or repr(function)
