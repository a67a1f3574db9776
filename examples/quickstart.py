"""Quickstart: an agent with two tools, served by Hypercorn, streamed over a WebSocket, then resumed from a
middle checkpoint (time travel). Offline: the model is the scripted adapter.

    python examples/quickstart.py

starts ``hypercorn -k trio examples/quickstart.py:server`` itself on a free port, runs the client against
it, and stops it. To serve it yourself: ``HELIX_DATA_DIR=./.helix hypercorn -k trio
examples/quickstart.py:server`` and use :class:`helix.client.AgentClient` (or curl) against it.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry, StepRequest, ToolContext, create_agent_server, tool
from helix.client import AgentClient

CATALOG = {"mug": ["red mug", "blue mug"], "lamp": ["desk lamp"]}


@tool
async def search_catalog(query: str) -> list[str]:
    """Find products whose name matches the query."""
    return [item for items in CATALOG.values() for item in items if query in item] or CATALOG.get(query, [])


@tool
async def add_to_cart(item: str, ctx: ToolContext) -> str:
    """Put an item in the shopper's cart (kept in the session state)."""
    cart = list(ctx.state.get("cart", []))
    await ctx.update_state({"cart": [*cart, item]})
    return f"{item} added; the cart has {len(cart) + 1} item(s)"


def shopper_model(request: StepRequest) -> dict[str, Any]:
    """A scripted model: search, add what the latest user message asks for, confirm."""
    step = sum(1 for m in request.messages if m.role == "assistant")
    wish = next(m.content for m in reversed(request.messages) if m.role == "user")
    colour = "blue" if "blue" in wish else "red"
    if step == 0:
        return {
            "text": "Let me look for mugs.",
            "tool_calls": [{"name": "search_catalog", "arguments": {"query": "mug"}}],
        }
    if step == 1 or request.messages[-1].role == "user":
        return {
            "text": f"The {colour} one it is.",
            "tool_calls": [{"name": "add_to_cart", "arguments": {"item": f"{colour} mug"}}],
        }
    return {"text": f"Done: your cart holds a {colour} mug."}


registry = AgentRegistry()
registry.register(
    Agent(name="shopper", system_prompt="You help people shop.", tools=[search_catalog, add_to_cart])
)

server = create_agent_server(
    llm_adapter=lambda env, ctx: ScriptedAdapter(shopper_model, chars_per_chunk=12),
    agents=registry,
    data_dir=os.environ.get("HELIX_DATA_DIR", "./.helix"),
)


def describe(chunk: dict[str, Any]) -> str | None:
    """One compact line per interesting chunk (text deltas are joined by the caller)."""
    kind = chunk["type"]
    if kind == "tool_call_end":
        return f"  -> {chunk['toolName']}({chunk['arguments']})"
    if kind == "tool_result":
        return f"  <- {chunk['result']}"
    if kind == "checkpoint":
        return f"  [checkpoint {chunk['checkpointId']} after step {chunk['step']}]"
    if kind in ("run_started", "run_resumed", "run_completed", "run_failed", "run_interrupted"):
        extra = chunk.get("checkpointId") or chunk.get("output") or chunk.get("reason") or ""
        return f"#{chunk['seq']} {kind} {extra}".rstrip()
    return None


async def show(stream: Any) -> None:
    text: list[str] = []
    async for chunk in stream:
        if chunk["type"] == "text_delta":
            text.append(chunk["delta"])
            continue
        if text:
            print(f"  {''.join(text)}")
            text.clear()
        line = describe(chunk)
        if line:
            print(line)


async def main(base_url: str) -> None:
    async with AgentClient(base_url) as client:
        print("== a run, streamed over a WebSocket")
        handle = await client.start("demo", agent_type="shopper", message="I need a mug")
        await show(handle.stream())
        print("state:", await handle.get_state())

        checkpoints = await handle.checkpoints()
        middle = checkpoints[0]  # after the search, before anything went into the cart
        print(f"\n== time travel: resume from {middle['id']} (step {middle['step']}) with a new wish")
        branch = await handle.resume(
            mode="from_checkpoint", checkpoint_id=middle["id"], message="the blue one, please"
        )
        await show(branch.stream())
        result = await branch.result()
        print("result:", result.status, "-", result.output)
        print("state:", await branch.get_state())
        old = await client.messages("demo", checkpoint_id=checkpoints[-1]["id"])
        print("the first branch still ends with:", old[-1]["content"])


if __name__ == "__main__":
    from _launch import hypercorn_process

    with hypercorn_process("quickstart") as url:
        trio.run(main, url)
