"""The app the server tests run under a real Hypercorn process: ``hypercorn -k trio
tests.server.served_app:server``.

Configured from the environment, so that each fixture can start the variant it needs:
``HELIX_TEST_DATA_DIR`` (required to serve), ``HELIX_TEST_PROFILE`` (``plain`` | ``hooks`` | ``endpoints``),
``HELIX_TEST_MAX_BODY`` (bytes), ``HELIX_TEST_HEARTBEAT`` (seconds), ``HELIX_TEST_IDLE`` (idle timeout),
``HELIX_TEST_MAX_LIVE`` (live actors), ``HELIX_TEST_MAX_WS`` (WebSockets per session).

Agents: ``worker`` (two tool steps, then an answer), ``slow`` (the same, with a delay per model event, so a
run lasts long enough to interrupt), ``chatty`` (many text chunks per step, for reconnect tests) and
``failing`` (its tool raises nothing, but its model fails on the second step).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry, tool
from helix.llm import LLMAdapterContext, StepRequest
from helix.server import (
    AbortResult,
    AuthorizeContext,
    CompleteContext,
    EndpointContext,
    HookContext,
    ServerHooks,
    ServerLimits,
    TransformContext,
    create_agent_server,
)
from helix.tools import ToolContext
from stores import UsageEntry


@tool
async def lookup(item: str) -> str:
    """Look an item up in the inventory."""
    return f"{item}: 3 in stock"


@tool
async def remember(note: str, ctx: ToolContext) -> str:
    """Store a note in the agent's state."""
    notes = list(ctx.state.get("notes", [])) if isinstance(ctx.state, dict) else []
    await ctx.update_state({"notes": [*notes, note]})
    return "ok"


def tool_steps(steps: int, final: str = "All done.") -> list[dict[str, Any]]:
    script: list[dict[str, Any]] = [
        {
            "text": f"Step {k}: noting item {k}.",
            "tool_calls": [
                {"name": "lookup", "arguments": {"item": f"item-{k}"}},
                {"name": "remember", "arguments": {"note": f"n{k}"}},
            ],
        }
        for k in range(steps)
    ]
    script.append({"text": final})
    return script


def chatty_script(steps: int) -> list[dict[str, Any]]:
    script: list[dict[str, Any]] = [
        {"text": "x" * 200, "tool_calls": [{"name": "lookup", "arguments": {"item": f"i{k}"}}]}
        for k in range(steps)
    ]
    script.append({"text": "y" * 200})
    return script


def failing_script(request: StepRequest) -> dict[str, Any]:
    if sum(1 for m in request.messages if m.role == "assistant") >= 1:
        raise RuntimeError("the model broke")
    return {"text": "first", "tool_calls": [{"name": "lookup", "arguments": {"item": "a"}}]}


SCRIPTS: dict[str, Any] = {
    "worker": (tool_steps(2), 0.0),
    "slow": (tool_steps(40), 0.02),
    "chatty": (chatty_script(10), 0.002),
    "failing": (failing_script, 0.0),
}


def adapter_factory(env: Any, ctx: LLMAdapterContext) -> ScriptedAdapter:
    script, delay = SCRIPTS[ctx.agent_type]
    return ScriptedAdapter(script, delay=delay)


def make_registry() -> AgentRegistry:
    registry = AgentRegistry()
    for name in SCRIPTS:
        registry.register(Agent(name=name, system_prompt="You work.", tools=[lookup, remember], max_steps=60))
    return registry


# -- hooks profile -------------------------------------------------------------------------------

TOKENS = {"token-alice": "alice", "token-bob": "bob"}
OWNERS: dict[str, str] = {}
COMPLETED: list[dict[str, Any]] = []
AFTER_STARTS: list[dict[str, Any]] = []
USAGE_RECORDED: list[dict[str, Any]] = []


class UsageRecorder:
    """A ``usage_store`` that remembers what it was given."""

    async def record(
        self, *, session_id: str, run_id: str, agent_type: str, entries: Sequence[UsageEntry]
    ) -> None:
        USAGE_RECORDED.append(
            {"sessionId": session_id, "runId": run_id, "kinds": sorted({e.kind for e in entries})}
        )


async def authorize(ctx: AuthorizeContext) -> AbortResult | None:
    if ctx.route == "metrics":
        return None
    header = ctx.request.headers.get("Authorization", "")
    user = TOKENS.get(header.removeprefix("Bearer ").strip())
    if user is None:
        return AbortResult.unauthorized()
    assert ctx.session_id is not None
    owner = OWNERS.get(ctx.session_id)
    if owner is None and ctx.route == "start":
        OWNERS[ctx.session_id] = user
    elif owner != user:
        return AbortResult.forbidden()
    return None


async def before_start(ctx: HookContext) -> AbortResult | None:
    if ctx.body.get("metadata", {}).get("refuse"):
        return AbortResult(
            status=418, body={"refused": True, "by": "before_start"}, headers={"X-Refused": "yes"}
        )
    if ctx.body.get("metadata", {}).get("explode"):
        raise RuntimeError("hook bug")
    if ctx.execution_state.is_executing:
        await ctx.execution_state.interrupt("superseded")
    return None


async def before_resume(ctx: HookContext) -> AbortResult | None:
    if ctx.body.get("options", {}).get("message") == "forbidden words":
        return AbortResult(status=422, body={"error": {"code": "moderated", "message": "no"}})
    return None


async def transform_request(ctx: TransformContext) -> dict[str, Any] | None:
    if ctx.route == "start" and isinstance(ctx.body, dict) and "prompt" in ctx.body:
        body = dict(ctx.body)
        body["input"] = {"message": body.pop("prompt")}
        return body
    return None


async def transform_response(ctx: TransformContext) -> Any:
    if ctx.route == "status" and isinstance(ctx.body, dict):
        return {**ctx.body, "owner": OWNERS.get(ctx.session_id)}
    return None


async def after_start(ctx: HookContext) -> None:
    AFTER_STARTS.append({"sessionId": ctx.session_id, "runId": ctx.run_id, "status": ctx.status})
    if ctx.body.get("metadata", {}).get("explode_after"):
        raise RuntimeError("after hook bug")


async def on_complete(ctx: CompleteContext) -> None:
    COMPLETED.append({"sessionId": ctx.session_id, "runId": ctx.run_id, "status": ctx.status})


async def completed_endpoint(request: Any, ctx: EndpointContext) -> Any:
    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in items if item["sessionId"] == ctx.session_id]

    return {"completed": mine(COMPLETED), "afterStarts": mine(AFTER_STARTS), "usage": mine(USAGE_RECORDED)}


# -- endpoints profile ---------------------------------------------------------------------------


async def echo(request: Any, ctx: EndpointContext) -> Any:
    return {
        "method": request.method,
        "sessionId": ctx.session_id,
        "isExecuting": ctx.execution_state.is_executing,
        "body": ctx.json(),
        "env": ctx.env,
    }


async def custom_status(request: Any, ctx: EndpointContext) -> Any:
    return ({"custom": True, "status": ctx.execution_state.status}, 203, {"X-Custom": "1"})


async def text_endpoint(request: Any, ctx: EndpointContext) -> Any:
    return ("plain text", 200)


async def broken_endpoint(request: Any, ctx: EndpointContext) -> Any:
    raise RuntimeError("endpoint bug with a secret")


def build() -> Any:
    profile = os.environ.get("HELIX_TEST_PROFILE", "plain")
    limits = ServerLimits(
        sse_heartbeat=float(os.environ.get("HELIX_TEST_HEARTBEAT", "15")),
        max_websockets_per_session=int(os.environ.get("HELIX_TEST_MAX_WS", "100")),
        max_ws_frame_bytes=64 * 1024,
    )
    hooks = None
    usage_store = None
    endpoints: dict[str, Any] = {}
    if profile == "hooks":
        hooks = ServerHooks(
            authorize=authorize,
            before_start=before_start,
            after_start=after_start,
            before_resume=before_resume,
            transform_request=transform_request,
            transform_response=transform_response,
            on_complete=on_complete,
        )
        endpoints = {"/completed": completed_endpoint}
        usage_store = UsageRecorder()
    elif profile == "endpoints":
        endpoints = {
            "/echo": echo,
            "/status": custom_status,
            "/text": text_endpoint,
            "/broken": broken_endpoint,
        }
    return create_agent_server(
        llm_adapter=adapter_factory,
        agents=make_registry(),
        hooks=hooks,
        endpoints=endpoints,
        usage_store=usage_store,
        env={"profile": profile},
        data_dir=os.environ.get("HELIX_TEST_DATA_DIR", "./.helix-test"),  # opened only when served
        idle_timeout=float(os.environ.get("HELIX_TEST_IDLE", "60")),
        max_live_actors=int(os.environ.get("HELIX_TEST_MAX_LIVE", "10000")),
        max_body_bytes=int(os.environ.get("HELIX_TEST_MAX_BODY", str(64 * 1024))),
        limits=limits,
    )


server = build()
