"""Custom endpoints: your own routes under ``/sessions/{sessionId}/``, next to the built-in ones.

    python examples/custom_endpoint.py

``endpoints={"/summary": summary, "/transcript": transcript}`` serves ``GET|POST|... /sessions/{sid}/summary``
and ``/sessions/{sid}/transcript``. A handler is ``async def handler(request, ctx)`` (``request`` is the
Quart request; ``ctx`` has ``env``, ``session_id``, ``execution_state``, ``logger``, ``runtime``); it
returns a dict or list (200 JSON), a ``(body, status[, headers])`` tuple, or a Quart ``Response``.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import trio

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry, EndpointContext, create_agent_server
from helix.client import AgentClient


async def summary(request: Any, ctx: EndpointContext) -> Any:
    """How far the session got, in one answer."""
    messages = await ctx.runtime.messages(ctx.session_id)
    answers = [m.content for m in messages if m.role == "assistant"]
    return {
        "sessionId": ctx.session_id,
        "status": ctx.execution_state.status,
        "turns": len(answers),
        "lastAnswer": answers[-1] if answers else None,
        "service": ctx.env["service"],
    }


async def transcript(request: Any, ctx: EndpointContext) -> Any:
    """The conversation as Markdown; ``POST`` with ``{"title": ...}`` to set a heading."""
    if request.method not in ("GET", "POST"):
        return (
            {"error": {"code": "method_not_allowed", "message": "GET or POST"}},
            405,
            {"Allow": "GET, POST"},
        )
    options = ctx.json() if request.method == "POST" else None
    title = (options or {}).get("title", f"Session {ctx.session_id}")
    lines = [f"# {title}", ""]
    lines += [f"**{m.role}**: {m.content}" for m in await ctx.runtime.messages(ctx.session_id)]
    return "\n".join(lines) + "\n", 200, {"Content-Type": "text/markdown; charset=utf-8"}


registry = AgentRegistry()
registry.register(Agent(name="greeter", system_prompt="You greet."))

server = create_agent_server(
    llm_adapter=lambda env, ctx: ScriptedAdapter([{"text": "Hello! How can I help?"}]),
    agents=registry,
    endpoints={"/summary": summary, "/transcript": transcript},
    env={"service": "greeter-demo"},
    data_dir=os.environ.get("HELIX_DATA_DIR", "./.helix"),
)


async def main(base_url: str) -> None:
    async with AgentClient(base_url) as client:
        handle = await client.start("visit-1", agent_type="greeter", message="Hi there")
        await handle.result()
    async with httpx.AsyncClient(base_url=base_url) as http:
        print("GET /summary ->", (await http.get("/sessions/visit-1/summary")).json())
        response = await http.post("/sessions/visit-1/transcript", json={"title": "First visit"})
        print(f"POST /transcript -> {response.status_code} {response.headers['content-type']}")
        print(response.text, end="")
        print("DELETE /transcript ->", (await http.delete("/sessions/visit-1/transcript")).status_code)


if __name__ == "__main__":
    from _launch import hypercorn_process

    with hypercorn_process("custom_endpoint") as url:
        trio.run(main, url)
