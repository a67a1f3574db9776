from __future__ import annotations

import pytest
import trio

from helix.agent import Agent
from helix.errors import AgentNotFoundError
from helix.registry import AgentFactoryContext, AgentRegistry, resolve_agent

SUPPORT = Agent(name="support", system_prompt="Help.")
SALES = Agent(name="sales", system_prompt="Sell.")


def ctx(agent_type: str = "support", **extra: object) -> AgentFactoryContext:
    return AgentFactoryContext(agent_type=agent_type, session_id="s1", **extra)  # type: ignore[arg-type]


async def test_registered_agent_is_resolved_and_got_by_name() -> None:
    registry = AgentRegistry()
    registry.register(SUPPORT)
    assert await registry.resolve("support", ctx()) is SUPPORT
    assert registry.get("support") is SUPPORT
    assert registry.has("support")


async def test_registry_unknown_name_raises_agent_not_found_with_available_types() -> None:
    registry = AgentRegistry()
    registry.register(SUPPORT)
    registry.register(SALES)
    registry.register_factory("custom", lambda c: SUPPORT)
    with pytest.raises(AgentNotFoundError) as caught:
        await registry.resolve("billing", ctx("billing"))
    assert caught.value.agent_type == "billing"
    assert caught.value.available_types == ["custom", "sales", "support"]
    assert caught.value.to_dict()["availableTypes"] == ["custom", "sales", "support"]


def test_registering_a_taken_name_raises_and_keeps_the_first() -> None:
    registry = AgentRegistry()
    registry.register(SUPPORT)
    with pytest.raises(ValueError, match="'support'"):
        registry.register(Agent(name="support"))
    with pytest.raises(ValueError, match="'support'"):
        registry.register_factory("support", lambda c: SALES)
    assert registry.get("support") is SUPPORT
    assert registry.types() == ["support"]


def test_register_rejects_non_agents_and_register_factory_rejects_bad_arguments() -> None:
    registry = AgentRegistry()
    with pytest.raises(TypeError, match="register_factory"):
        registry.register(lambda c: SUPPORT)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        registry.register_factory("x", SUPPORT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        registry.register_factory("", lambda c: SUPPORT)
    assert registry.types() == []


async def test_sync_factory_is_called_with_the_context_on_every_resolve() -> None:
    seen: list[AgentFactoryContext] = []

    def build(context: AgentFactoryContext) -> Agent:
        seen.append(context)
        return Agent(name="custom", system_prompt=f"env={context.env}")

    registry = AgentRegistry()
    registry.register_factory("custom", build)
    first = await registry.resolve("custom", ctx("custom", env="prod", run_id="r1"))
    second = await registry.resolve("custom", ctx("custom", env="prod", run_id="r2"))
    assert first.system_prompt == "env=prod" and first is not second
    assert [c.run_id for c in seen] == ["r1", "r2"]


async def test_async_factory_is_awaited() -> None:
    async def build(context: AgentFactoryContext) -> Agent:
        await trio.lowlevel.checkpoint()
        return Agent(name=context.agent_type)

    registry = AgentRegistry()
    registry.register_factory("later", build)
    assert (await registry.resolve("later", ctx("later"))).name == "later"


async def test_factory_returning_something_else_raises_type_error() -> None:
    registry = AgentRegistry()
    registry.register_factory("broken", lambda c: "not an agent")  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="'broken'"):
        await registry.resolve("broken", ctx("broken"))


def test_get_returns_registered_agents_only_not_factories() -> None:
    registry = AgentRegistry()
    registry.register_factory("custom", lambda c: SUPPORT)
    assert registry.get("custom") is None
    assert registry.has("custom")


def test_unregister_removes_agents_and_factories_and_says_whether_it_did() -> None:
    registry = AgentRegistry()
    registry.register(SUPPORT)
    registry.register_factory("custom", lambda c: SALES)
    assert registry.unregister("support") is True
    assert registry.unregister("custom") is True
    assert registry.unregister("support") is False
    assert registry.types() == []
    registry.register(Agent(name="support"))  # the name is free again


def test_types_are_sorted_and_clear_removes_everything() -> None:
    registry = AgentRegistry()
    registry.register(SUPPORT)
    registry.register_factory("analyst", lambda c: SALES)
    registry.register(SALES)
    assert registry.types() == ["analyst", "sales", "support"]
    registry.clear()
    assert registry.types() == [] and not registry.has("support")


def test_two_registries_share_nothing() -> None:
    first, second = AgentRegistry(), AgentRegistry()
    first.register(SUPPORT)
    assert second.types() == []


def test_factory_context_is_frozen_and_keyword_only() -> None:
    context = ctx()
    assert (context.env, context.run_id) == (None, None)
    with pytest.raises(AttributeError):
        context.session_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        AgentFactoryContext("support", "s1")  # type: ignore[call-arg]


async def test_resolve_agent_accepts_a_registry() -> None:
    registry = AgentRegistry()
    registry.register(SUPPORT)
    assert await resolve_agent(registry, "support", ctx()) is SUPPORT
    with pytest.raises(AgentNotFoundError):
        await resolve_agent(registry, "sales", ctx("sales"))


async def test_resolve_agent_accepts_sync_and_async_resolver_functions() -> None:
    agents = {"support": SUPPORT, "sales": SALES}

    def sync_resolver(agent_type: str, context: AgentFactoryContext) -> Agent | None:
        return agents.get(agent_type)

    async def async_resolver(agent_type: str, context: AgentFactoryContext) -> Agent | None:
        await trio.lowlevel.checkpoint()
        return agents.get(agent_type)

    assert await resolve_agent(sync_resolver, "support", ctx()) is SUPPORT
    assert await resolve_agent(async_resolver, "sales", ctx("sales")) is SALES


async def test_resolver_returning_none_gives_agent_not_found_without_available_types() -> None:
    with pytest.raises(AgentNotFoundError) as caught:
        await resolve_agent(lambda agent_type, context: None, "ghost", ctx("ghost"))
    assert (caught.value.agent_type, caught.value.available_types) == ("ghost", [])


async def test_agent_not_found_raised_by_a_resolver_is_passed_on_unchanged() -> None:
    def resolver(agent_type: str, context: AgentFactoryContext) -> Agent:
        raise AgentNotFoundError(agent_type, ["support"])

    with pytest.raises(AgentNotFoundError) as caught:
        await resolve_agent(resolver, "ghost", ctx("ghost"))
    assert caught.value.available_types == ["support"]


async def test_resolver_returning_something_else_raises_type_error() -> None:
    with pytest.raises(TypeError, match="resolver"):
        await resolve_agent(lambda agent_type, context: 42, "x", ctx("x"))  # type: ignore[arg-type, return-value]
