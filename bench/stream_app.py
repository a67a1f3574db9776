"""The helix app the stream benchmark serves: ``hypercorn -k trio --workers 1 bench.stream_app:server``.

Agents, each a one-step model answer with no tool call, streamed by
:class:`adapters.ScriptedAdapter` in 8-character ``text_delta`` chunks:

- ``burst``: ``HELIX_BENCH_BURST_CHUNKS`` text chunks (default 100) at zero model delay (workload 1);
- ``paced``: ``HELIX_BENCH_PACED_CHUNKS`` text chunks (default 900) with ``1 / HELIX_BENCH_PACED_RATE``
  seconds (default 1/30) before every model event (workload 2).

A run's stream is ``run_started``, ``step_started``, the text chunks, ``step_finished``, ``checkpoint`` and
``run_completed``: every one committed to the session's SQLite file before it is sent (the output gate).
``HELIX_BENCH_DATA_DIR`` (required to serve) is where the session files go; ``HELIX_BENCH_IDLE`` the
actors' idle timeout in seconds (default 60).
"""

from __future__ import annotations

import os
from typing import Any

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry, create_agent_server
from helix.llm import LLMAdapterContext
from helix.server import ServerLimits

CHARS_PER_CHUNK = 8
BURST_CHUNKS = int(os.environ.get("HELIX_BENCH_BURST_CHUNKS", "100"))
PACED_CHUNKS = int(os.environ.get("HELIX_BENCH_PACED_CHUNKS", "900"))
PACED_RATE = float(os.environ.get("HELIX_BENCH_PACED_RATE", "30"))


def answer(chunks: int) -> str:
    """``chunks`` * 8 characters of prose-like text (so every delta is exactly 8 characters)."""
    base = "The quick brown fox jumps over the lazy dog while the stream goes on. "
    text = base * (chunks * CHARS_PER_CHUNK // len(base) + 1)
    return text[: chunks * CHARS_PER_CHUNK]


SCRIPTS: dict[str, tuple[list[dict[str, Any]], float]] = {
    "burst": ([{"text": answer(BURST_CHUNKS)}], 0.0),
    "paced": ([{"text": answer(PACED_CHUNKS)}], 1.0 / PACED_RATE),
}


def adapter_factory(env: Any, ctx: LLMAdapterContext) -> ScriptedAdapter:
    script, delay = SCRIPTS[ctx.agent_type]
    return ScriptedAdapter(script, chars_per_chunk=CHARS_PER_CHUNK, delay=delay)


def make_registry() -> AgentRegistry:
    registry = AgentRegistry()
    for name in SCRIPTS:
        registry.register(Agent(name=name, system_prompt="Answer at length.", max_steps=4))
    return registry


server = create_agent_server(
    llm_adapter=adapter_factory,
    agents=make_registry(),
    data_dir=os.environ.get("HELIX_BENCH_DATA_DIR", "./.helix-bench"),  # opened only when served
    idle_timeout=float(os.environ.get("HELIX_BENCH_IDLE", "60")),
    max_live_actors=20_000,
    limits=ServerLimits(max_websockets_per_session=100),
)
