from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from helix.errors import HelixError
from helix.llm import ToolSpec
from helix.tools import Tool, ToolArgumentsError, ToolContext, tool, tool_result_text


class Recorder:
    """Stands in for the engine behind a ToolContext."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = dict(state or {})
        self.emitted: list[tuple[str, Any]] = []

    def context(self, tool_call_id: str = "call_0_0") -> ToolContext:
        async def update_state(patch: dict[str, Any]) -> None:
            self.state = {**self.state, **patch}

        async def emit(type: str, payload: Any) -> None:
            self.emitted.append((type, payload))

        return ToolContext(
            session_id="s1",
            run_id="r1",
            tool_call_id=tool_call_id,
            get_state=lambda: self.state,
            update_state=update_state,
            emit=emit,
        )


class Address(BaseModel):
    city: str
    zip_code: str


@tool
async def lookup_order(order_id: str, ctx: ToolContext, verbose: bool = False) -> dict[str, Any]:
    """Look an order up by its id.

    Args:
        order_id: the order's id.
    """
    return {"order_id": order_id, "verbose": verbose, "session": ctx.session_id}


def test_tool_name_and_description_come_from_the_function_and_its_whole_docstring() -> None:
    assert lookup_order.name == "lookup_order"
    assert lookup_order.description == "Look an order up by its id.\n\nArgs:\n    order_id: the order's id."


def test_tool_schema_comes_from_signature_and_excludes_tool_context() -> None:
    schema = lookup_order.parameters
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"order_id", "verbose"}
    assert schema["properties"]["order_id"]["type"] == "string"
    assert schema["properties"]["verbose"] == {"default": False, "title": "Verbose", "type": "boolean"}
    assert schema["required"] == ["order_id"]
    assert schema["additionalProperties"] is False


def test_tool_spec_is_what_the_model_sees() -> None:
    assert lookup_order.spec == ToolSpec(
        name="lookup_order", description=lookup_order.description, parameters=lookup_order.parameters
    )


def test_tool_name_and_description_can_be_overridden() -> None:
    @tool(name="find-order", description="Find one order.")
    async def lookup(order_id: str) -> str:
        """Ignored docstring."""
        return order_id

    assert (lookup.name, lookup.description) == ("find-order", "Find one order.")


def test_tool_with_empty_parentheses_and_no_docstring_has_an_empty_description() -> None:
    @tool()
    async def ping() -> str:
        return "pong"

    assert isinstance(ping, Tool)
    assert (ping.name, ping.description) == ("ping", "")
    assert ping.parameters["properties"] == {}


def test_annotated_field_constraints_and_descriptions_reach_the_schema() -> None:
    @tool
    async def take(count: Annotated[int, Field(ge=1, description="how many")]) -> int:
        return count

    assert take.parameters["properties"]["count"] == {
        "description": "how many",
        "minimum": 1,
        "title": "Count",
        "type": "integer",
    }


async def test_tool_arguments_are_validated_and_bad_arguments_raise_tool_arguments_error() -> None:
    calls: list[int] = []

    @tool
    async def take(count: Annotated[int, Field(ge=1)], label: str = "x") -> int:
        calls.append(count)
        return count

    ctx = Recorder().context()
    assert await take.invoke({"count": "3"}, ctx) == 3  # lax mode converts "3"
    with pytest.raises(ToolArgumentsError) as caught:
        await take.invoke({"count": 0, "label": 5}, ctx)
    error = caught.value
    assert error.tool_name == "take"
    assert [(d["loc"], d["type"]) for d in error.details] == [
        (["count"], "greater_than_equal"),
        (["label"], "string_type"),
    ]
    assert "count" in str(error) and "'take'" in str(error)
    json.dumps(error.details)  # details are JSON-ready: they go to the model and into chunks
    assert calls == [3], "the function is not called with bad arguments"


async def test_missing_and_unknown_arguments_are_rejected() -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await lookup_order.invoke({"verbose": True, "extra": 1}, Recorder().context())
    assert sorted(d["type"] for d in caught.value.details) == ["extra_forbidden", "missing"]


async def test_arguments_that_are_not_an_object_raise_tool_arguments_error() -> None:
    with pytest.raises(ToolArgumentsError):
        await lookup_order.invoke(["o1"], Recorder().context())  # type: ignore[arg-type]


def test_tool_arguments_error_is_for_the_model_not_a_runtime_error() -> None:
    assert not issubclass(ToolArgumentsError, HelixError)


async def test_defaults_fill_missing_optional_arguments_and_ctx_is_passed() -> None:
    result = await lookup_order.invoke({"order_id": "o1"}, Recorder().context())
    assert result == {"order_id": "o1", "verbose": False, "session": "s1"}


async def test_model_typed_parameters_receive_validated_model_instances() -> None:
    seen: list[Address] = []

    @tool
    async def ship(to: Address) -> str:
        seen.append(to)
        return to.city

    assert await ship.invoke({"to": {"city": "Oslo", "zip_code": "0150"}}, Recorder().context()) == "Oslo"
    assert seen == [Address(city="Oslo", zip_code="0150")]
    assert "$defs" in ship.parameters


async def test_parameters_named_like_basemodel_attributes_work() -> None:
    @tool
    async def encode(json: str, model_config: int = 1) -> str:
        return f"{json}:{model_config}"

    assert set(encode.parameters["properties"]) == {"json", "model_config"}
    assert await encode.invoke({"json": "a"}, Recorder().context()) == "a:1"


async def test_positional_only_and_keyword_only_parameters_are_called_correctly() -> None:
    @tool
    async def combine(a: int, /, b: int, *, c: int = 3) -> list[int]:
        return [a, b, c]

    assert await combine.invoke({"a": 1, "b": 2}, Recorder().context()) == [1, 2, 3]


async def test_tool_context_exposes_ids_state_updates_and_emit() -> None:
    recorder = Recorder({"count": 1})

    @tool
    async def bump(ctx: ToolContext, by: int) -> int:
        await ctx.update_state({"count": ctx.state["count"] + by})
        await ctx.emit("bumped", {"by": by})
        await ctx.emit("done")
        return int(ctx.state["count"])

    ctx = recorder.context("call_3_1")
    assert (ctx.session_id, ctx.run_id, ctx.tool_call_id) == ("s1", "r1", "call_3_1")
    assert await bump.invoke({"by": 2}, ctx) == 3, "state reflects the update made earlier in the call"
    assert recorder.state == {"count": 3}
    assert recorder.emitted == [("bumped", {"by": 2}), ("done", None)]
    assert "call_3_1" in repr(ctx)


def test_tool_context_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        ToolContext("s", "r", "c", dict, None, None)  # type: ignore[call-arg, arg-type]


def test_untyped_parameter_is_rejected_at_decoration_time() -> None:
    with pytest.raises(TypeError, match="'order_id'"):

        @tool
        async def lookup(order_id, verbose: bool = False) -> str:  # type: ignore[no-untyped-def]
            return str(order_id)


def test_sync_function_is_rejected_at_decoration_time() -> None:
    with pytest.raises(TypeError, match="async def"):

        @tool  # type: ignore[arg-type]
        def lookup(order_id: str) -> str:
            return order_id


@pytest.mark.parametrize("star", ["args", "kwargs"])
def test_star_parameters_are_rejected_at_decoration_time(star: str) -> None:
    async def with_args(*args: int) -> None: ...

    async def with_kwargs(**kwargs: int) -> None: ...

    with pytest.raises(TypeError, match=star):
        tool(with_args if star == "args" else with_kwargs)


def test_invalid_tool_name_is_rejected_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="invalid tool name"):

        @tool(name="look up order")
        async def lookup(order_id: str) -> str:
            return order_id


def test_unresolvable_annotation_is_rejected_at_decoration_time() -> None:
    with pytest.raises(TypeError, match="cannot resolve"):

        @tool
        async def lookup(order_id: NoSuchType) -> str:  # type: ignore[name-defined]  # noqa: F821
            return str(order_id)


def test_tools_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        lookup_order.name = "other"  # type: ignore[misc]


def test_tool_result_text_keeps_strings_and_serializes_everything_else_as_compact_json() -> None:
    assert tool_result_text("plain text") == "plain text"
    assert tool_result_text(Address(city="Zürich", zip_code="8001")) == '{"city":"Zürich","zip_code":"8001"}'
    assert tool_result_text({"a": [1, 2.5], "b": "é"}) == '{"a":[1,2.5],"b":"é"}'
    assert tool_result_text([Address(city="A", zip_code="1")]) == '[{"city":"A","zip_code":"1"}]'
    assert tool_result_text(None) == "null"
    assert tool_result_text(42) == "42"


def test_tool_result_text_falls_back_to_str_for_values_json_cannot_represent() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    assert tool_result_text({"x": Opaque()}) == '{"x":"opaque!"}'
