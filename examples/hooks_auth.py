"""Hooks: bearer-token auth bound to the user who owns a session, and a new start that supersedes the
running one. Offline (scripted model).

    python examples/hooks_auth.py

- ``authorize`` runs for every route (reads, SSE, the WebSocket and each of its commands, custom
  endpoints): no token is a 401, a token of another user a 403. The first user to start a session owns
  it. (Owners live in a dict here; keep them in your database.)
- ``before_start`` interrupts a run that is still executing ("superseded"), then lets the new start
  through; without it a start while running is a 409.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from adapters import ScriptedAdapter
from helix import (
    AbortResult,
    Agent,
    AgentRegistry,
    AuthorizeContext,
    HookContext,
    ServerHooks,
    create_agent_server,
    tool,
)
from helix.client import AgentClient, AgentServerError

TOKENS = {"secret-alice": "alice", "secret-bob": "bob"}  # token -> user id
OWNERS: dict[str, str] = {}  # session id -> user id


async def authorize(ctx: AuthorizeContext) -> AbortResult | None:
    if ctx.session_id is None:  # /metrics: left to the network in this example
        return None
    token = ctx.request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    user = TOKENS.get(token)
    if user is None:
        return AbortResult.unauthorized("send Authorization: Bearer <token>")
    owner = OWNERS.setdefault(ctx.session_id, user) if ctx.route == "start" else OWNERS.get(ctx.session_id)
    if owner != user:
        return AbortResult.forbidden(f"session {ctx.session_id!r} belongs to someone else")
    return None


async def before_start(ctx: HookContext) -> AbortResult | None:
    if ctx.execution_state.is_executing:
        await ctx.execution_state.interrupt("superseded")
    return None


@tool
async def save_paragraph(number: int) -> str:
    """Save a drafted paragraph."""
    return f"paragraph {number} saved"


def writer_model(request: Any) -> dict[str, Any]:
    step = sum(1 for m in request.messages if m.role == "assistant")
    if step < 20:  # a long run, so that there is something to supersede
        return {
            "text": f"Drafting paragraph {step + 1}.",
            "tool_calls": [{"name": "save_paragraph", "arguments": {"number": step + 1}}],
        }
    return {"text": "Finished."}


registry = AgentRegistry()
registry.register(Agent(name="writer", system_prompt="You write.", tools=[save_paragraph], max_steps=40))

server = create_agent_server(
    llm_adapter=lambda env, ctx: ScriptedAdapter(writer_model, delay=0.005),
    agents=registry,
    hooks=ServerHooks(authorize=authorize, before_start=before_start),
    data_dir=os.environ.get("HELIX_DATA_DIR", "./.helix"),
)


async def main(base_url: str) -> None:
    alice = {"Authorization": "Bearer secret-alice"}
    async with AgentClient(base_url, headers=alice) as client:
        first = await client.start("essay", agent_type="writer", message="Write about otters.")
        print("alice started", first.run_id)

        for name, headers in (("nobody", {}), ("bob", {"Authorization": "Bearer secret-bob"})):
            async with AgentClient(base_url, headers=headers) as other:
                try:
                    await other.status("essay")
                except AgentServerError as refused:
                    print(f"{name} reading alice's session: {refused.http_status} {refused.error_code}")

        second = await client.start("essay", message="Actually, write about beavers.")
        print("alice started again:", second.run_id)
        replaced = await first.result()
        print(f"the first run ended {replaced.status} ({replaced.reason})")
        print("the second run ended", (await second.result()).status)


if __name__ == "__main__":
    from _launch import hypercorn_process

    with hypercorn_process("hooks_auth") as url:
        trio.run(main, url)
