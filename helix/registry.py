"""Which agent runs for an agent type: a registry of agents and factories, or a resolver function.

The registry is built by the application and passed to the server (``agents=``); nothing is registered
globally. ``agents=`` also accepts a resolver function ``(agent_type, AgentFactoryContext) -> Agent``;
:func:`resolve_agent` treats both alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .agent import Agent
from .errors import AgentNotFoundError

__all__ = ["AgentFactory", "AgentFactoryContext", "AgentRegistry", "AgentResolver", "resolve_agent"]


@dataclass(frozen=True, kw_only=True)
class AgentFactoryContext:
    """Who an agent is resolved for: the agent type asked for, the session, the server's ``env``, and the
    run when one is being started (``None`` for requests that only read)."""

    agent_type: str
    session_id: str
    env: Any = None
    run_id: str | None = None


AgentFactory: TypeAlias = Callable[[AgentFactoryContext], Agent | Awaitable[Agent]]
"""``(ctx) -> Agent``, sync or async: builds an agent per resolution (per run)."""

AgentResolver: TypeAlias = Callable[[str, AgentFactoryContext], Agent | Awaitable[Agent | None] | None]
"""``(agent_type, ctx) -> Agent``, sync or async; returning ``None`` or raising
:class:`AgentNotFoundError` means the type is unknown."""


class AgentRegistry:
    """Agents and agent factories by agent type.

    A name is taken once, by an agent or a factory: registering it again raises ``ValueError`` (call
    :meth:`unregister` first to replace it). Factories are called on every :meth:`resolve`, that is once
    per run; their result is not cached, so a factory may build its agent from ``ctx.env`` or the session.
    """

    def __init__(self) -> None:
        self._agents: dict[str, Agent] = {}
        self._factories: dict[str, AgentFactory] = {}

    def register(self, agent: Agent) -> None:
        """Register ``agent`` under ``agent.name``. Raises ``TypeError`` for a non-Agent and
        ``ValueError`` when the name is taken."""
        if not isinstance(agent, Agent):
            raise TypeError(
                f"register() takes an Agent, got {type(agent).__name__}; use register_factory for functions"
            )
        self._claim(agent.name)
        self._agents[agent.name] = agent

    def register_factory(self, name: str, factory: AgentFactory) -> None:
        """Register ``factory`` (sync or async ``(AgentFactoryContext) -> Agent``) under ``name``. Raises
        ``ValueError`` for an empty or taken name and ``TypeError`` when ``factory`` is not callable."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"an agent type needs a non-empty name, got {name!r}")
        if not callable(factory):
            raise TypeError(f"the factory for {name!r} must be callable, got {factory!r}")
        self._claim(name)
        self._factories[name] = factory

    async def resolve(self, name: str, ctx: AgentFactoryContext) -> Agent:
        """The agent for ``name``: the registered agent, or what its factory builds for ``ctx``.

        Raises :class:`AgentNotFoundError` (with the registered types) for an unknown name, ``TypeError``
        when a factory returns something other than an Agent, and whatever the factory raises.
        """
        agent = self._agents.get(name)
        if agent is not None:
            return agent
        factory = self._factories.get(name)
        if factory is None:
            raise AgentNotFoundError(name, self.types())
        result = factory(ctx)
        if inspect.isawaitable(result):
            result = await result
        return _checked(result, f"the factory for {name!r}")

    def get(self, name: str) -> Agent | None:
        """The agent registered with :meth:`register` under ``name``, or ``None``. Factories are not
        called (use :meth:`resolve`)."""
        return self._agents.get(name)

    def has(self, name: str) -> bool:
        """Whether ``name`` is registered, as an agent or a factory."""
        return name in self._agents or name in self._factories

    def unregister(self, name: str) -> bool:
        """Remove the agent or factory registered under ``name``; return whether there was one."""
        return self._agents.pop(name, None) is not None or self._factories.pop(name, None) is not None

    def types(self) -> list[str]:
        """Every registered agent type, agents and factories, sorted."""
        return sorted([*self._agents, *self._factories])

    def clear(self) -> None:
        """Remove every agent and factory."""
        self._agents.clear()
        self._factories.clear()

    def __repr__(self) -> str:
        return f"AgentRegistry(types={self.types()!r})"

    def _claim(self, name: str) -> None:
        if self.has(name):
            raise ValueError(f"agent type {name!r} is already registered; unregister it first to replace it")


async def resolve_agent(source: AgentRegistry | AgentResolver, name: str, ctx: AgentFactoryContext) -> Agent:
    """The agent for ``name`` from a registry or a resolver function (sync or async).

    Raises :class:`AgentNotFoundError` for an unknown name — a resolver that returns ``None`` gives one
    with no ``available_types``, since a function cannot list them; one the resolver raises itself is
    passed on as it is —, ``TypeError`` when the resolver returns something other than an Agent, and
    whatever the resolver or a factory raises.
    """
    if isinstance(source, AgentRegistry):
        return await source.resolve(name, ctx)
    result = source(name, ctx)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        raise AgentNotFoundError(name, [])
    return _checked(result, "the agent resolver")


def _checked(result: object, origin: str) -> Agent:
    if not isinstance(result, Agent):
        raise TypeError(f"{origin} returned {type(result).__name__}, not an Agent")
    return result
