"""The benchmark suite of issue 8 in one command: ``python -m bench`` (or ``python bench/run.py``).

Runs, with defaults that finish in under 5 minutes on 2 cores:

1. stream pipeline, ours vs the bare quart-trio ceiling, at 1, 50 and 200 sessions (``bench/stream.py``);
2. paced streams, 200 sessions x 30 chunks/s x 30 s (``bench/stream.py``; one run by default: the figure
   of a single 30-s run, see ``--paced-repeats``);
3. agent steps vs LangGraph + its SQLite checkpointer, both durability modes, in the same run
   (``bench/engine.py``'s functions and ``../shared/bench/peers/langgraph_bench.py``);
4. sessions at rest: 10,000 on disk, 1,000 live idle actors, 1,000 idle WebSockets, cold activation
   (``bench/rest.py``).

Prints a table, writes ``bench/results.json`` (every figure ``{"median", "min", "max"}`` over the repeats;
``repeats`` in the file says how many). Servers bind to 127.0.0.1 on free ports, run in their own process
groups and are killed as groups at the end, errors included.

    python -m bench [--repeats 3] [--paced-duration 30] [--paced-repeats 1] [--profile] [--profile-paced]
                    [--only stream,paced,steps,rest] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import rest, stream  # noqa: E402
from bench.stream import summary  # noqa: E402

PEER = REPO.parent / "shared" / "bench" / "peers" / "langgraph_bench.py"
WORKLOADS = ("stream", "paced", "steps", "rest")


# -- machine -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""
            )
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as meminfo:
            mem_kb = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        mem_kb = 0

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {
            name: version(name)
            for name in ("trio", "hypercorn", "quart", "quart-trio", "trio-websocket", "wsproto", "langgraph")
        },
    }


class OtherLoad:
    """CPU the rest of the machine used while the suite ran (other tenants of a shared box): all busy
    time in ``/proc/stat`` minus this process's and its waited-for children's, in CPUs."""

    def __init__(self) -> None:
        self.start = (self._busy(), self._ours(), time.perf_counter())

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        self_usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return sum(u.ru_utime + u.ru_stime for u in (self_usage, children))

    def cpus(self) -> float:
        busy, ours, started = self.start
        wall = time.perf_counter() - started
        return round(max(0.0, (self._busy() - busy) - (self._ours() - ours)) / wall, 2)


# -- workload 3: agent steps vs LangGraph ----------------------------------------------------------


def bench_steps(
    *, repeats: int, sessions: int, concurrency: int, sweep: str, peer_sweep: str
) -> dict[str, Any]:
    """``bench/engine.py``'s load (helix, whole messages as the peer's model emits them) and the peer in
    both durability modes, ``repeats`` times, interleaved; helix's bytes/step sweep once (deterministic:
    file bytes of a fixed script); the peer's sweep once (``--db-mode none --sweep``)."""
    import trio

    from bench import engine

    config = argparse.Namespace(sessions=sessions, steps=10, concurrency=concurrency, resume_samples=20)
    ours: list[dict[str, Any]] = []
    ours_open: list[dict[str, Any]] = []  # the same with every session file created before the clock
    peers: dict[str, list[dict[str, Any]]] = {"async": [], "sync": []}
    for _ in range(repeats):
        ours.append(trio.run(engine.bench_load, config, 10_000))
        ours_open.append(trio.run(functools.partial(engine.bench_load, config, 10_000, sessions_open=True)))
        for durability in peers:
            peer = engine.run_peer(config, durability)
            if peer is None:
                raise RuntimeError(
                    f"the LangGraph peer ({durability}) did not run; pip install -e '.[bench]'"
                )
            peers[durability].append(peer)
    lengths = [int(x) for x in sweep.split(",") if x]
    by_length = trio.run(engine.bench_bytes_by_length, lengths)
    peer_by_length: dict[str, float] = {}
    if peer_sweep:
        done = subprocess.run(
            [sys.executable, str(PEER), "--db-mode", "none", "--sweep", peer_sweep],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        swept = json.loads(done.stdout)["bytes_per_step_by_length"]
        peer_by_length = {length: value["db_bytes_per_step"] for length, value in swept.items()}

    def faster(index: int) -> dict[str, Any]:
        return max((peers[d][index] for d in peers), key=lambda p: p["steps_per_s"])

    def quicker_resume(index: int) -> dict[str, Any]:
        return min(
            (peers[d][index] for d in peers),
            key=lambda p: p["resume_from_mid_checkpoint"]["to_completion_ms_p50"],
        )

    indices = range(repeats)
    return {
        "config": {"sessions": sessions, "steps": 10, "concurrency": concurrency, "repeats": repeats},
        "ratio_vs_langgraph": summary(
            [ours[i]["steps_per_s"] / faster(i)["steps_per_s"] for i in indices], 2
        ),
        "ratio_vs_langgraph_by_durability": {
            d: summary([ours[i]["steps_per_s"] / peers[d][i]["steps_per_s"] for i in indices], 2)
            for d in peers
        },
        "steps_per_s": summary([o["steps_per_s"] for o in ours], 1),
        "steps_per_s_sessions_already_open": summary([o["steps_per_s"] for o in ours_open], 1),
        "ratio_vs_langgraph_sessions_already_open": summary(
            [ours_open[i]["steps_per_s"] / faster(i)["steps_per_s"] for i in indices], 2
        ),
        "langgraph_steps_per_s": {d: summary([p["steps_per_s"] for p in peers[d]], 1) for d in peers},
        "step_latency_ms": {q: summary([o["step_latency_ms"][q] for o in ours], 2) for q in ("p50", "p99")},
        "langgraph_step_latency_ms": {
            d: {q: summary([p["step_latency_ms"][q] for p in peers[d]], 2) for q in ("p50", "p99")}
            for d in peers
        },
        "db_bytes_per_step_load": summary([o["db_bytes_per_step"] for o in ours], 1),
        "langgraph_db_bytes_per_step_load": summary([p["db_bytes_per_step"] for p in peers["async"]], 1),
        "bytes_per_step": by_length,
        "langgraph_bytes_per_step": peer_by_length,
        "resume": {
            "ratio_vs_langgraph": summary(
                [
                    ours[i]["resume_to_completion_ms_p50"]
                    / quicker_resume(i)["resume_from_mid_checkpoint"]["to_completion_ms_p50"]
                    for i in indices
                ],
                3,
            ),
            "ours_ms_p50": summary([o["resume_to_completion_ms_p50"] for o in ours], 2),
            "langgraph_ms_p50": {
                d: summary([p["resume_from_mid_checkpoint"]["to_completion_ms_p50"] for p in peers[d]], 2)
                for d in peers
            },
        },
    }


# -- the table -----------------------------------------------------------------------------------


def _median(value: Any) -> float:
    return float(value["median"] if isinstance(value, dict) else value)


def _spread(value: Any, fmt: str) -> str:
    if not isinstance(value, dict):
        return format(value, fmt)
    return f"{format(value['median'], fmt)} [{format(value['min'], fmt)}-{format(value['max'], fmt)}]"


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of issue 8 with its measured median and whether it is met."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, goal: str, met: bool, fmt: str) -> None:
        out.append({"name": name, "value": _spread(value, fmt), "goal": goal, "met": met})

    s = results.get("stream", {})
    for c, ratio in s.get("ratio_vs_ceiling", {}).items():
        add(f"stream ratio vs ceiling @{c}", ratio, ">= 0.7", _median(ratio) >= 0.7, ".2f")
    if "p99_ms_paced" in s:
        add("paced p99 emit->receive ms", s["p99_ms_paced"], "< 50", _median(s["p99_ms_paced"]) < 50, ".1f")
    st = results.get("steps", {})
    if "ratio_vs_langgraph" in st:
        r = st["ratio_vs_langgraph"]
        add("steps/s vs faster LangGraph", r, ">= 5x", _median(r) >= 5, ".2f")
    if st.get("bytes_per_step"):
        b = st["bytes_per_step"]
        flat = max(b.values()) <= 1.1 * min(b.values())
        add(
            "bytes/step @10/100/1000", "/".join(f"{v:.0f}" for v in b.values()), "flat (within 10%)", flat, ""
        )
    res = results.get("resume", {})
    if "ratio_vs_langgraph" in res:
        r = res["ratio_vs_langgraph"]
        add("resume latency ours/LangGraph", r, "<= 1", _median(r) <= 1, ".3f")
    return out


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    s = results.get("stream", {})
    for c in s.get("ratio_vs_ceiling", {}):
        rows.append(
            (
                f"stream @{c} sessions: chunks/s ours | ceiling",
                f"{_spread(s['chunks_per_s'][c], '.0f')} | {_spread(s['ceiling_chunks_per_s'][c], '.0f')}",
                "",
            )
        )
        lat, top = s["latency_ms"][c], s["ceiling_latency_ms"][c]
        rows.append(
            (
                f"stream @{c}: latency p50/p99 ms ours | ceiling",
                f"{_median(lat['p50']):.1f}/{_median(lat['p99']):.1f} | "
                f"{_median(top['p50']):.1f}/{_median(top['p99']):.1f}",
                "",
            )
        )
        rows.append(
            (
                f"stream @{c}: server CPU us/chunk ours | ceiling",
                f"{_spread(s['server_cpu_us_per_chunk'][c], '.0f')} | "
                f"{_spread(s['ceiling_server_cpu_us_per_chunk'][c], '.0f')}",
                "",
            )
        )
        rows.append(
            (
                f"stream @{c}: same pipeline in-process, no WebSocket: CPU us/chunk",
                _spread(s["inprocess_cpu_us_per_chunk"][c], ".0f"),
                "",
            )
        )
    if "paced" in s:
        p = s["paced"]
        rows.append(("paced: p50 ms", _spread(p["p50_ms"], ".1f"), ""))
        for phase, figure in p.get("p99_ms_by_phase", {}).items():
            rows.append((f"paced: p99 ms, {phase} phase", _spread(figure, ".1f"), ""))
        rows.append(
            (
                "paced: delivered chunks/s (target)",
                f"{_spread(p['delivered_chunks_per_s'], '.0f')} ({p['target_chunks_per_s']:.0f})",
                "",
            )
        )
        rows.append(
            ("paced: server CPU ms per 1,000 chunks", _spread(p["server_cpu_ms_per_1000_chunks"], ".0f"), "")
        )
    st = results.get("steps", {})
    if st:
        rows.append(("steps/s ours", _spread(st["steps_per_s"], ".0f"), ""))
        rows.append(
            (
                "steps/s ours, session files created before the clock | ratio",
                f"{_spread(st['steps_per_s_sessions_already_open'], '.0f')} | "
                f"{_spread(st['ratio_vs_langgraph_sessions_already_open'], '.2f')}",
                "",
            )
        )
        for d, v in st["langgraph_steps_per_s"].items():
            rows.append((f"steps/s LangGraph ({d})", _spread(v, ".0f"), ""))
        if st.get("langgraph_bytes_per_step"):
            rows.append(
                (
                    "LangGraph bytes/step by length",
                    ", ".join(f"{k}: {v:.0f}" for k, v in st["langgraph_bytes_per_step"].items()),
                    "",
                )
            )
    res = results.get("resume", {})
    if res:
        rows.append(("resume to completion ms ours", _spread(res["ours_ms_p50"], ".2f"), ""))
    r = results.get("rest", {})
    if r:
        rows.append(
            (
                "rest: RSS bytes / hibernated session",
                _spread(r["rss_bytes_per_hibernated_session"], ".1f"),
                "",
            )
        )
        rows.append(
            ("rest: RSS bytes / live idle actor", _spread(r["rss_bytes_per_live_idle_actor"], ".0f"), "")
        )
        rows.append(
            ("rest: RSS bytes / idle WebSocket", _spread(r["rss_bytes_per_idle_websocket"], ".0f"), "")
        )
        rows.append(
            (
                "rest: ... with its (pinned) actor | bare quart-trio",
                f"{_median(r['rss_bytes_per_idle_websocket_with_its_actor']):.0f} | "
                f"{_median(r['ceiling_rss_bytes_per_idle_websocket']):.0f}",
                "",
            )
        )
        rows.append(
            (
                "rest: cold activation p50 | p99 ms",
                " | ".join(_spread(r[f"cold_activation_{q}_ms"], ".2f") for q in ("p50", "p99")),
                "",
            )
        )
        hibernation = r.get("mass_hibernation")
        if hibernation:
            rows.append(
                (
                    f"rest: {hibernation['sessions']} sessions hibernate at once: longest loop stall ms"
                    " | all closed after ms",
                    f"{_spread(hibernation['longest_loop_stall_ms'], '.1f')} | "
                    f"{_spread(hibernation['all_closed_after_sweep_ms'], '.0f')}",
                    "",
                )
            )
    for goal in results.get("goals", []):
        rows.append(
            (goal["name"], goal["value"], f"goal {goal['goal']}: {'met' if goal['met'] else 'MISSED'}")
        )
    width = max(len(name) for name, _, _ in rows) + 2
    value_width = max(len(value) for _, value, _ in rows) + 2
    lines = [f"{'figure (median [min-max])':<{width}}{'value':<{value_width}}goal"]
    lines.append("-" * (width + value_width + 20))
    lines += [f"{name:<{width}}{value:<{value_width}}{note}" for name, value, note in rows]
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats of workloads 1, 3 and 4's hibernation"
    )
    parser.add_argument("--paced-duration", type=float, default=30.0)
    parser.add_argument("--paced-repeats", type=int, default=1)
    parser.add_argument(
        "--steps-sessions",
        type=int,
        default=200,
        help="the peer script's default; 100 halves the time (our run then lasts ~0.5 s: noisier)",
    )
    parser.add_argument("--sweep", default="10,100,1000", help="conversation lengths of helix's bytes/step")
    parser.add_argument("--peer-sweep", default="10,100", help="LangGraph's (1000 takes ~20 s more)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy one more workload-1 run at 200 sessions"
    )
    parser.add_argument("--profile-paced", action="store_true", help="py-spy one more paced run (+30-60 s)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"a subset of {','.join(WORKLOADS)}")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args(argv)
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    if unknown := only - set(WORKLOADS):
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")

    entry = "python -m bench" if sys.argv[0].endswith("__main__.py") else "python bench/run.py"
    command = " ".join([entry, *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    other_load = OtherLoad()
    results: dict[str, Any] = {
        "command": command,
        "machine": machine(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": {
            "stream": args.repeats,
            "paced": args.paced_repeats,
            "steps": args.repeats,
            "rest_hibernated": args.repeats,
            "rest_live": 1,
            "rest_websockets": 1,
        },
        "timings_s": {},
    }
    with tempfile.TemporaryDirectory(prefix="helix-bench-") as tmp:
        workdir = Path(tmp)

        def timed(name: str) -> float:
            now = time.perf_counter()
            results["timings_s"][name] = round(now - timed.last, 1)  # type: ignore[attr-defined]
            timed.last = now  # type: ignore[attr-defined]
            return now

        timed.last = time.perf_counter()  # type: ignore[attr-defined]
        stream_results: dict[str, Any] = {}
        if "stream" in only:
            print("workload 1: stream pipeline vs ceiling ...", file=sys.stderr, flush=True)
            profile = workdir / "profile-stream-200.txt" if args.profile else None
            pipeline = stream.bench_pipeline(workdir / "pipeline", repeats=args.repeats, profile=profile)
            stream_results.update(
                {k: pipeline[k] for k in pipeline if k not in ("profile",)},
            )
            if "profile" in pipeline:
                stream_results["profile_200"] = pipeline["profile"]
            timed("stream")
        if "paced" in only:
            print("workload 2: paced streams ...", file=sys.stderr, flush=True)
            profile = workdir / "profile-paced.txt" if args.profile_paced else None
            paced = stream.bench_paced(
                workdir / "paced", repeats=args.paced_repeats, duration=args.paced_duration, profile=profile
            )
            stream_results["p99_ms_paced"] = paced["p99_ms"]
            stream_results["paced"] = paced
            timed("paced")
        if stream_results:
            results["stream"] = stream_results
        if "steps" in only:
            print("workload 3: agent steps vs LangGraph ...", file=sys.stderr, flush=True)
            steps = bench_steps(
                repeats=args.repeats,
                sessions=args.steps_sessions,
                concurrency=50,
                sweep=args.sweep,
                peer_sweep=args.peer_sweep,
            )
            results["resume"] = steps.pop("resume")
            results["steps"] = steps
            timed("steps")
        if "rest" in only:
            print("workload 4: sessions at rest ...", file=sys.stderr, flush=True)
            results["rest"] = rest.bench_rest(workdir / "rest", repeats=args.repeats)
            timed("rest")
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["other_load_cpus"] = other_load.cpus()
    results["goals"] = goals(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(
        f"\n{results['duration_s']} s; other processes on this machine used "
        f"{results['machine']['other_load_cpus']} CPUs meanwhile; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
