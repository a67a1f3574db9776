"""Agents, tools and scripts the engine tests share."""

from __future__ import annotations

from typing import Any

from helix import Agent, AgentRegistry, tool
from helix.tools import ToolContext


@tool
async def lookup(item: str) -> str:
    """Look an item up in the inventory."""
    return f"{item}: 3 in stock"


@tool
async def remember(note: str, ctx: ToolContext) -> str:
    """Store a note in the agent's state."""
    notes = list(ctx.state.get("notes", [])) if isinstance(ctx.state, dict) else list(ctx.state.notes)
    await ctx.update_state({"notes": [*notes, note]})
    await ctx.emit("noted", {"note": note})
    return "ok"


@tool
async def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def tool_loop_script(steps: int, final: str = "All done.") -> list[dict[str, Any]]:
    """``steps`` tool-calling steps (lookup item-k), then a final answer."""
    script: list[dict[str, Any]] = [
        {
            "text": f"Step {k}: looking up item {k}.",
            "tool_calls": [{"name": "lookup", "arguments": {"item": f"item-{k}"}}],
        }
        for k in range(steps)
    ]
    script.append({"text": final})
    return script


def make_registry(**agent_options: Any) -> AgentRegistry:
    registry = AgentRegistry()
    registry.register(
        Agent(name="worker", system_prompt="You work.", tools=[lookup, remember, explode], **agent_options)
    )
    return registry


async def collect(handle: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in handle.stream()]


def types_of(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["type"] for c in chunks]
