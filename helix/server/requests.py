"""Request bodies: strict JSON parsing and the pydantic models of the command bodies.

Parsing is strict where Python's ``json`` is lenient: the body must be UTF-8 (no silent replacement),
``NaN``, ``Infinity`` and numbers that overflow to infinity are refused, nesting is bounded (``json``
would raise ``RecursionError`` on deep input), and strings holding lone surrogates (which could never be
stored as UTF-8) are refused. Every refusal is a 400 ``invalid_request``.

Field names are accepted in camelCase (as on the wire) and in snake_case. Unknown fields are ignored, so a
client of a newer version keeps working against this server; hooks still see them in ``ctx.body``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from ..commands import InputMessage
from ..errors import InvalidRequestError

MAX_JSON_DEPTH = 64

M = TypeVar("M", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:32]} is out of range")
    return value


def parse_json(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode ``data`` as strict JSON; raise :class:`InvalidRequestError` for anything else."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("the body is not valid UTF-8", details={"position": exc.start}) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidRequestError(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"invalid JSON: {exc.msg}", details={"line": exc.lineno, "column": exc.colno}
        ) from None
    except ValueError as exc:  # NaN, Infinity, an out-of-range number, an int with too many digits
        raise InvalidRequestError(f"invalid JSON: {exc}") from None
    _check_shape(value, max_depth)
    return value


def _check_shape(value: Any, max_depth: int) -> None:
    """Bound the nesting depth and refuse lone surrogates, without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidRequestError(f"JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError("a JSON string holds a lone surrogate (\\ud800-\\udfff)") from None


def parse_json_object(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A JSON object body; an empty body counts as ``{}``."""
    if not data.strip():
        return {}
    value = parse_json(data, max_depth=max_depth)
    if not isinstance(value, dict):
        raise InvalidRequestError(f"the body must be a JSON object, not {type(value).__name__}")
    return value


_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(value: Any) -> Any:
    """``withMessage`` -> ``with_message``: mode values are accepted in either spelling too."""
    return _CAMEL_HUMP.sub("_", value).lower() if isinstance(value, str) else value


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="ignore", frozen=True
    )


Text = Annotated[str, Field(max_length=1_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=256)]


class InputMessageBody(WireModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text
    tool_call_id: Name | None = None

    def to_input(self) -> InputMessage:
        return InputMessage(role=self.role, content=self.content, tool_call_id=self.tool_call_id)


class StartInput(WireModel):
    message: Text | None = None
    state: dict[str, Any] | None = None
    messages: list[InputMessageBody] = Field(default_factory=list, max_length=1000)


class StartBody(WireModel):
    """``agentType`` may be left out of a follow-up start: the session's latest agent type is used."""

    agent_type: Name | None = None
    input: StartInput = Field(default_factory=StartInput)
    user_id: Name | None = None
    tags: list[Name] | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None

    def run_metadata(self) -> dict[str, Any] | None:
        """``metadata`` with ``userId`` and ``tags`` folded in; stored with the run."""
        merged = dict(self.metadata or {})
        if self.user_id is not None:
            merged["userId"] = self.user_id
        if self.tags is not None:
            merged["tags"] = list(self.tags)
        return merged or None


ResumeModeName = Annotated[
    Literal["continue", "with_message", "from_checkpoint", "branch"], BeforeValidator(_snake)
]
RetryModeName = Annotated[Literal["from_checkpoint", "from_start"], BeforeValidator(_snake)]


class ResumeOptions(WireModel):
    mode: ResumeModeName = "continue"
    checkpoint_id: Name | None = None
    modify_state: dict[str, Any] | None = None
    append_messages: list[InputMessageBody] = Field(default_factory=list, max_length=1000)
    message: Text | None = None


class ResumeBody(WireModel):
    agent_type: Name | None = None
    options: ResumeOptions = Field(default_factory=ResumeOptions)


class RetryOptions(WireModel):
    mode: RetryModeName = "from_checkpoint"
    message: Text | None = None


class RetryBody(WireModel):
    agent_type: Name | None = None
    options: RetryOptions = Field(default_factory=RetryOptions)


class StopBody(WireModel):
    reason: Annotated[str, Field(min_length=1, max_length=1000)] | None = None


def validate(model: type[M], body: dict[str, Any]) -> M:
    """``model`` from ``body``; a 400 with pydantic's error list (inputs left out) otherwise."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"invalid {model.__name__.removesuffix('Body').lower()} request body",
            details=exc.errors(include_url=False, include_context=False, include_input=False),
        ) from None


_DIGITS = re.compile(r"[0-9]{1,15}")


def query_value(args: Any, camel: str) -> str | None:
    """A query parameter by its camelCase name or its snake_case one."""
    value = args.get(camel)
    if value is None:
        value = args.get(_CAMEL_HUMP.sub("_", camel).lower())
    return value if value is None else str(value)


def parse_count(text: str | None, name: str, *, default: int, minimum: int = 0) -> int:
    """A non-negative decimal integer parameter (ASCII digits only: no sign, no spaces, no ``_``)."""
    if text is None:
        return default
    if not _DIGITS.fullmatch(text) or int(text) < minimum:
        raise InvalidRequestError(f"{name} must be an integer >= {minimum}", details={name: text[:64]})
    return int(text)


def parse_flag(text: str | None, name: str, *, default: bool) -> bool:
    if text is None:
        return default
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequestError(f"{name} must be true or false", details={name: text[:64]})
