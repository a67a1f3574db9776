"""The app the reliability tests and ``bench/soak_crash.py`` run under Hypercorn:
``hypercorn -k trio tests.reliability.served:server``.

Configured from the environment: ``HELIX_TEST_DATA_DIR`` (required to serve), ``HELIX_TEST_PROFILE``
(``plain`` | ``strict``), ``HELIX_LOOP_STEPS`` / ``HELIX_LOOP_DELAY`` (the ``looper`` agent).

Agents:

- ``worker``: two tool steps and an answer, no delay (a quick way to give a session some history);
- ``quick``: three tool steps counted from the latest user message (so a follow-up start runs them all
  again, and a resumed run goes on where it stopped), 2 ms per model event: runs of tens of milliseconds,
  so a run's completion races the commands sent to stop it;
- ``looper``: the same with ``HELIX_LOOP_STEPS`` steps and ``HELIX_LOOP_DELAY`` seconds per model event:
  a long streaming run for the crash soak.

The ``strict`` profile adds an ``authorize`` hook that refuses anything without a known bearer token,
``/metrics`` included (only ``/healthz`` is public), binds a session to the user who started it, and
serves two custom endpoints.
"""

from __future__ import annotations

import os
from typing import Any

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry
from helix.llm import LLMAdapterContext, StepRequest
from helix.server import (
    AbortResult,
    AuthorizeContext,
    EndpointContext,
    ServerHooks,
    ServerLimits,
    create_agent_server,
)
from tests.server.served_app import lookup, remember, tool_steps

LOOP_STEPS = int(os.environ.get("HELIX_LOOP_STEPS", "12"))
LOOP_DELAY = float(os.environ.get("HELIX_LOOP_DELAY", "0.01"))
MAX_BODY = 64 * 1024
MAX_FRAME = 64 * 1024


def looping(steps: int) -> Any:
    """A script of ``steps`` tool steps, then an answer, counted from the latest user message."""

    def script(request: StepRequest) -> dict[str, Any]:
        done = 0
        for message in reversed(request.messages):
            if message.role == "user":
                break
            done += message.role == "assistant"
        if done < steps:
            return {
                "text": f"Part {done + 1} of {steps}.",
                "tool_calls": [{"name": "lookup", "arguments": {"item": f"part-{done + 1}"}}],
            }
        return {"text": "Finished."}

    return script


SCRIPTS: dict[str, tuple[Any, float, int]] = {  # agent -> (script, delay per event, chars per chunk)
    "worker": (tool_steps(2), 0.0, 8),
    "quick": (looping(3), 0.002, 8),
    "looper": (looping(LOOP_STEPS), LOOP_DELAY, 4),
}


def adapter_factory(env: Any, ctx: LLMAdapterContext) -> ScriptedAdapter:
    script, delay, chars = SCRIPTS[ctx.agent_type]
    return ScriptedAdapter(script, delay=delay, chars_per_chunk=chars)


def make_registry() -> AgentRegistry:
    registry = AgentRegistry()
    for name in SCRIPTS:
        registry.register(
            Agent(name=name, system_prompt="You work.", tools=[lookup, remember], max_steps=100)
        )
    return registry


# -- strict profile ------------------------------------------------------------------------------

TOKENS = {"token-alice": "alice", "token-bob": "bob"}
OWNERS: dict[str, str] = {}


async def strict_authorize(ctx: AuthorizeContext) -> AbortResult | None:
    header = ctx.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = TOKENS.get(token.strip()) if scheme == "Bearer" else None
    if user is None:
        return AbortResult.unauthorized()
    if ctx.session_id is None:  # /metrics: any known user
        return None
    owner = OWNERS.setdefault(ctx.session_id, user) if ctx.route == "start" else OWNERS.get(ctx.session_id)
    if owner != user:
        return AbortResult.forbidden()
    return None


async def notes(request: Any, ctx: EndpointContext) -> Any:
    return {"sessionId": ctx.session_id, "method": request.method}


async def report(request: Any, ctx: EndpointContext) -> Any:
    return {"report": ctx.execution_state.status}


async def echo(request: Any, ctx: EndpointContext) -> Any:
    return {"body": ctx.json()}


def build(profile: str | None = None) -> Any:
    profile = profile or os.environ.get("HELIX_TEST_PROFILE", "plain")
    hooks = None
    endpoints: dict[str, Any] = {"/echo": echo}
    if profile == "strict":
        hooks = ServerHooks(authorize=strict_authorize)
        endpoints = {"/notes": notes, "/deep/report": report}
    return create_agent_server(
        llm_adapter=adapter_factory,
        agents=make_registry(),
        hooks=hooks,
        endpoints=endpoints,
        env={"profile": profile},
        data_dir=os.environ.get("HELIX_TEST_DATA_DIR", "./.helix-test"),  # opened only when served
        max_body_bytes=MAX_BODY,
        limits=ServerLimits(max_ws_frame_bytes=MAX_FRAME, sse_heartbeat=0.5),
    )


server = build()
