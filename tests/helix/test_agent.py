from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, PydanticInvalidForJsonSchema, ValidationError

from helix.agent import Agent, OutputValidationError
from helix.errors import HelixError
from helix.tools import tool


@tool
async def lookup(item: str) -> str:
    """Look an item up."""
    return item


@tool
async def ship(item: str, quantity: int = 1) -> str:
    """Ship an item."""
    return item


class Cart(BaseModel):
    items: list[str] = []
    owner: str = "anonymous"


class Account(BaseModel):
    user_id: str


class Answer(BaseModel):
    summary: str
    score: int


def test_agent_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Agent("support")  # type: ignore[call-arg]


def test_agent_defaults() -> None:
    agent = Agent(name="support")
    assert (agent.system_prompt, agent.tools, agent.max_steps, agent.model) == ("", (), 25, None)
    assert agent.state_schema is None and agent.output_schema is None


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_agent_name_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        Agent(name=name)


def test_max_steps_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        Agent(name="a", max_steps=0)


def test_duplicate_tool_names_are_rejected_naming_the_tool() -> None:
    @tool(name="lookup")
    async def other_lookup(item: str) -> str:
        return item

    with pytest.raises(ValueError, match="'lookup'"):
        Agent(name="a", tools=[lookup, other_lookup])


def test_undecorated_function_as_tool_is_rejected_with_a_hint() -> None:
    async def plain(item: str) -> str:
        return item

    with pytest.raises(TypeError, match="@tool"):
        Agent(name="a", tools=[plain])  # type: ignore[list-item]


def test_schema_that_is_not_a_pydantic_model_is_rejected() -> None:
    with pytest.raises(TypeError, match="state_schema"):
        Agent(name="a", state_schema=dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="output_schema"):
        Agent(name="a", output_schema=Cart())  # type: ignore[arg-type]


def test_agents_are_frozen_and_changed_with_replace() -> None:
    agent = Agent(name="a", tools=[lookup])
    with pytest.raises(dataclasses.FrozenInstanceError):
        agent.max_steps = 3  # type: ignore[misc]
    shorter = dataclasses.replace(agent, max_steps=3)
    assert (shorter.max_steps, shorter.tool("lookup")) == (3, lookup)
    assert agent.max_steps == 25


def test_system_prompt_may_be_a_string_or_a_function_of_the_state() -> None:
    assert Agent(name="a", system_prompt="Be brief.").render_system_prompt(None) == "Be brief."
    agent = Agent(
        name="a", system_prompt=lambda state: f"Cart has {len(state.items)} items.", state_schema=Cart
    )
    assert agent.render_system_prompt(Cart(items=["x", "y"])) == "Cart has 2 items."


def test_system_prompt_function_returning_a_non_string_raises_type_error() -> None:
    agent = Agent(name="a", system_prompt=lambda state: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="int"):
        agent.render_system_prompt({})


def test_tools_are_found_by_name_and_specs_keep_their_order() -> None:
    agent = Agent(name="a", tools=[ship, lookup])
    assert agent.tool("lookup") is lookup
    assert agent.tool("missing") is None
    assert [spec.name for spec in agent.tool_specs()] == ["ship", "lookup"]
    assert agent.tool_specs()[0] == ship.spec
    assert isinstance(agent.tools, tuple)


def test_initial_state_is_an_empty_dict_without_schema() -> None:
    assert Agent(name="a").initial_state() == {}


def test_initial_state_is_the_schema_defaults_or_none_when_fields_are_required() -> None:
    assert Agent(name="a", state_schema=Cart).initial_state() == Cart()
    assert Agent(name="a", state_schema=Account).initial_state() is None


def test_validate_state_with_schema_returns_a_validated_copy() -> None:
    agent = Agent(name="a", state_schema=Cart)
    assert agent.validate_state({"items": ["x"]}) == Cart(items=["x"])
    assert agent.validate_state(None) == Cart()
    given = Cart(items=["x"])
    copied = agent.validate_state(given)
    assert copied == given and copied is not given


def test_validate_state_with_schema_raises_validation_error_for_bad_state() -> None:
    with pytest.raises(ValidationError):
        Agent(name="a", state_schema=Cart).validate_state({"items": "not a list"})
    with pytest.raises(ValidationError):
        Agent(name="a", state_schema=Account).validate_state(None)


def test_validate_state_without_schema_returns_an_independent_json_ready_dict() -> None:
    agent = Agent(name="a")
    given: dict[str, Any] = {"notes": ["a"], "pair": (1, 2)}
    state = agent.validate_state(given)
    assert state == {"notes": ["a"], "pair": [1, 2]}
    state["notes"].append("b")
    assert given["notes"] == ["a"], "the caller's dict is not aliased"
    assert agent.validate_state(None) == {}
    assert agent.validate_state(Cart(items=["x"])) == {"items": ["x"], "owner": "anonymous"}


def test_validate_state_without_schema_rejects_non_objects() -> None:
    with pytest.raises(ValidationError):
        Agent(name="a").validate_state(["not", "an", "object"])  # type: ignore[arg-type]


def test_dump_state_is_json_ready() -> None:
    assert Agent(name="a", state_schema=Cart).dump_state(Cart(items=["x"])) == {
        "items": ["x"],
        "owner": "anonymous",
    }
    assert Agent(name="a").dump_state({"k": (1,)}) == {"k": [1]}
    assert Agent(name="a").dump_state(None) is None


def test_output_json_schema_is_the_output_models_schema_or_none() -> None:
    assert Agent(name="a").output_json_schema() is None
    assert Agent(name="a", output_schema=Answer).output_json_schema() == Answer.model_json_schema()


def test_parse_output_without_schema_returns_the_text() -> None:
    assert Agent(name="a").parse_output("  Hello  ") == "  Hello  "


@pytest.mark.parametrize(
    "text",
    [
        '{"summary": "ok", "score": 3}',
        '  {"summary": "ok", "score": 3}\n',
        '```json\n{"summary": "ok", "score": 3}\n```',
        '```\n{"summary": "ok", "score": 3}\n```',
        'Here it is:\n```JSON\n{"summary": "ok", "score": 3}\n```\nThanks.',
    ],
)
def test_parse_output_accepts_bare_or_fenced_json(text: str) -> None:
    assert Agent(name="a", output_schema=Answer).parse_output(text) == Answer(summary="ok", score=3)


def test_parse_output_raises_output_validation_error_for_text_that_is_not_json() -> None:
    with pytest.raises(OutputValidationError, match="not valid JSON") as caught:
        Agent(name="a", output_schema=Answer).parse_output("I think the score is 3.")
    assert caught.value.details is None


def test_parse_output_raises_output_validation_error_with_details_for_the_wrong_shape() -> None:
    with pytest.raises(OutputValidationError, match="Answer") as caught:
        Agent(name="a", output_schema=Answer).parse_output('{"summary": "ok", "score": "high"}')
    assert caught.value.details is not None
    assert [(d["loc"], d["type"]) for d in caught.value.details] == [(["score"], "int_parsing")]
    assert "score" in caught.value.message


def test_output_validation_error_is_for_the_model_not_a_runtime_error() -> None:
    assert not issubclass(OutputValidationError, HelixError)


def test_output_schema_without_a_json_schema_is_rejected_at_construction() -> None:
    class Opaque:
        pass

    class Unrepresentable(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        value: Opaque

    with pytest.raises(PydanticInvalidForJsonSchema):
        Agent(name="a", output_schema=Unrepresentable)
