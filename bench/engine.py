"""Agent steps per second: helix's engine vs LangGraph + its SQLite checkpointer, side by side.

The workload is the peer's (../shared/bench/peers/langgraph_bench.py): sessions of 10 tool-calling steps
and a final answer (11 agent steps), a ~200-character assistant message per step, one `lookup` tool call
answered with a small JSON result, 200 sessions, 50 at a time, zero model delay. Definitions match:

  agent step   = one model step and the tool call it asked for;
  step latency = time between consecutive committed `step_finished` chunks a listener receives (the
                 first from the start call);
  resume       = time travel from the checkpoint halfway through a finished session (the model step is
                 next), run to completion, sequentially on an idle runtime;
  bytes/step   = session files' bytes (after a WAL checkpoint) / agent steps.

helix commits every step before it goes on (and every streamed chunk before a listener sees it), so the
goal (>= 5x steps/s) is held against the faster of LangGraph's two durability modes.

    python bench/engine.py [--sessions 200] [--concurrency 50] [--skip-peer]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry, tool
from helix.chunks import TERMINAL_TYPES
from helix.runtime import AgentRuntime

PEER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers" / "langgraph_bench.py"

_FILLER = (
    "Checking the inventory ledger, cross-referencing the supplier feed and "
    "recording the intermediate figures before deciding on the next action "
    "for this request; continuing with the plan as outlined earlier. "
)


def _text(prefix: str, n: int = 200) -> str:
    s = prefix + _FILLER
    while len(s) < n:
        s += _FILLER
    return s[:n]


def script_for(steps: int) -> list[dict[str, Any]]:
    script: list[dict[str, Any]] = [
        {
            "text": _text(f"Step {i}: I will call lookup for item {i}. "),
            "tool_calls": [{"name": "lookup", "arguments": {"item": f"item-{i}", "detail": "full"}}],
        }
        for i in range(steps)
    ]
    script.append({"text": _text("Final answer: all items were looked up and reconciled. ")})
    return script


@tool
async def lookup(item: str, detail: str = "brief") -> str:
    """Look up an inventory item."""
    return json.dumps({"item": item, "qty": 42, "status": "ok"})


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def files_bytes(data_dir: Path) -> int:
    total = 0
    for path in data_dir.glob("??/*.sqlite3"):
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        total += path.stat().st_size
    return total


def runtime_for(data_dir: Path, script: list[dict[str, Any]], chars_per_chunk: int) -> AgentRuntime:
    registry = AgentRegistry()
    registry.register(
        Agent(name="inventory", system_prompt="Reconcile the inventory.", tools=[lookup], max_steps=10_000)
    )
    return AgentRuntime(
        llm_adapter=lambda env, ctx: ScriptedAdapter(script, chars_per_chunk=chars_per_chunk),
        agents=registry,
        data_dir=data_dir,
    )


async def run_session(runtime: AgentRuntime, session_id: str, latencies: list[float]) -> None:
    """Run one session to completion, listening to its committed chunks as a WebSocket would (the
    stored JSON text, not decoded)."""
    started = time.perf_counter()
    handle = await runtime.start(session_id, agent_type="inventory", message="Reconcile the inventory.")
    previous = started
    async with runtime.subscribe(session_id, from_seq=handle.info.first_seq or 1) as stored_chunks:
        async for stored in stored_chunks:
            if stored.type == "step_finished":
                now = time.perf_counter()
                latencies.append(now - previous)
                previous = now
            elif stored.type in TERMINAL_TYPES:
                return


async def bench_load(
    args: argparse.Namespace, chars_per_chunk: int, *, sessions_open: bool = False
) -> dict[str, Any]:
    """The timed load. With ``sessions_open``, every session's file is created and opened before the
    clock starts (returning users), which separates the cost of creating a session file from the steps."""
    workdir = Path(tempfile.mkdtemp(prefix="helix-engine-bench-"))
    script = script_for(args.steps)
    latencies: list[float] = []
    try:
        runtime = runtime_for(workdir, script, chars_per_chunk)
        async with runtime:
            if sessions_open:
                for index in range(args.sessions):
                    await runtime.directory.get(f"s{index:05d}")
            limiter = trio.CapacityLimiter(args.concurrency)

            async def one(index: int) -> None:
                async with limiter:
                    await run_session(runtime, f"s{index:05d}", latencies)

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for index in range(args.sessions):
                    nursery.start_soon(one, index)
            wall = time.perf_counter() - started

            resume_ms: list[float] = []
            middle = args.steps // 2
            for index in range(min(args.resume_samples, args.sessions)):
                session_id = f"s{index:05d}"
                checkpoint = (await runtime.checkpoints(session_id))[middle - 1]
                t0 = time.perf_counter()
                handle = await runtime.resume(session_id, mode="from_checkpoint", checkpoint_id=checkpoint.id)
                result = await handle.result()
                resume_ms.append((time.perf_counter() - t0) * 1000)
                assert result.status == "completed"
        agent_steps = args.sessions * (args.steps + 1)
        lat_ms = [x * 1000 for x in latencies]
        return {
            "chars_per_chunk": chars_per_chunk,
            "wall_s": round(wall, 3),
            "agent_steps": agent_steps,
            "steps_per_s": round(agent_steps / wall, 1),
            "step_latency_ms": {"p50": round(statistics.median(lat_ms), 2), "p99": round(pct(lat_ms, 99), 2)},
            "resume_to_completion_ms_p50": round(statistics.median(resume_ms), 2),
            "db_bytes_per_step": round(
                files_bytes(workdir) / (agent_steps + len(resume_ms) * (args.steps - middle + 1)), 1
            ),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def session_bytes(tool_steps: int) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="helix-engine-sweep-"))
    try:
        script = script_for(tool_steps)
        runtime = runtime_for(workdir, script, chars_per_chunk=len(script[0]["text"]))
        async with runtime:
            await (await runtime.start("sweep", agent_type="inventory", message="go")).result()
        return files_bytes(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def bench_bytes_by_length(lengths: list[int]) -> dict[str, float]:
    """Bytes per step of a conversation L steps long, without the file's fixed cost (an empty schema and
    the final step): (bytes(L tool steps) - bytes(0 tool steps)) / L. Flat means a step costs the same at
    step 10 and at step 1,000."""
    baseline = await session_bytes(0)
    return {str(length): round((await session_bytes(length) - baseline) / length, 1) for length in lengths}


def run_peer(args: argparse.Namespace, durability: str) -> dict[str, Any] | None:
    command = [
        sys.executable,
        str(PEER),
        "--sessions",
        str(args.sessions),
        "--steps",
        str(args.steps),
        "--concurrency",
        str(args.concurrency),
        "--db-mode",
        "per-thread",
        "--durability",
        durability,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"peer ({durability}) did not run: {exc}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result["runs"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--resume-samples", type=int, default=20)
    parser.add_argument("--sweep", default="10,100,1000")
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()

    ours_whole = trio.run(bench_load, args, 10_000)  # the peer's model emits its message whole
    ours_open = trio.run(functools.partial(bench_load, args, 10_000, sessions_open=True))
    ours_streamed = trio.run(bench_load, args, 8)  # and streamed in 8-character deltas
    lengths = [int(x) for x in args.sweep.split(",") if x]
    by_length = trio.run(bench_bytes_by_length, lengths)
    report: dict[str, Any] = {
        "bench": "helix_engine",
        "command": "python bench/engine.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count()},
        "config": {"sessions": args.sessions, "steps": args.steps, "concurrency": args.concurrency},
        "helix": ours_whole,
        "helix_sessions_already_open": ours_open,
        "helix_streamed_8_chars": ours_streamed,
        "bytes_per_step": by_length,
    }
    if not args.skip_peer:
        peers = {d: run_peer(args, d) for d in ("async", "sync")}
        report["langgraph"] = peers
        ratios: dict[str, Any] = {}
        for durability, peer in peers.items():
            if peer is None:
                continue
            ratios[durability] = {
                "steps_per_s": round(ours_whole["steps_per_s"] / peer["steps_per_s"], 2),
                "steps_per_s_streamed": round(ours_streamed["steps_per_s"] / peer["steps_per_s"], 2),
                "step_latency_p50": round(
                    ours_whole["step_latency_ms"]["p50"] / peer["step_latency_ms"]["p50"], 3
                ),
                "resume_latency": round(
                    ours_whole["resume_to_completion_ms_p50"]
                    / peer["resume_from_mid_checkpoint"]["to_completion_ms_p50"],
                    3,
                ),
                "bytes_per_step": round(ours_whole["db_bytes_per_step"] / peer["db_bytes_per_step"], 3),
            }
        report["ratio_vs_langgraph"] = ratios
        fastest = max((p["steps_per_s"] for p in peers.values() if p), default=None)
        if fastest:
            report["ratio_vs_faster_langgraph"] = round(ours_whole["steps_per_s"] / fastest, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
