"""Workloads 1 and 2 of the benchmark suite (issue 8): WebSocket streams through a real Hypercorn process.

1. Stream pipeline. ``ScriptedAdapter`` at zero delay -> session actor -> SQLite commit (the output gate:
   every chunk committed before it is sent) -> WebSocket -> the client, ``bench/ws_client.py`` (trio +
   trio-websocket) in a separate process, through ``hypercorn -k trio --workers 1 bench.stream_app:server``.
   Chunks per second delivered and emit-to-receive latency at 1, 50 and 200 concurrent sessions. In the
   same run the ceiling, ``bench.ceiling_app:app`` under the same Hypercorn command, pushes the same frames
   (recorded from a helix session of this run: same count, same bytes) with no storage; ratio = ours /
   ceiling, per repeat, then the median of the repeats. A point at concurrency ``c`` streams
   ``sessions[c]`` runs (``c`` at a time; at 1, 20 runs one after another) of 105 chunks each. Sessions
   are activated (file created, actor live) before the clock starts (``ws_client.py --probe``). Also
   measured: the server's CPU time per chunk in the measured window (both servers), and the same runs
   in one process without Hypercorn or a socket (``runtime.subscribe``): what the pipeline itself costs.
2. Paced streams. 200 sessions, each streaming 30 text chunks/s for 30 s (``ScriptedAdapter(delay=1/30)``,
   900 chunks, starts spread evenly over one 1/30 s period, as independent streams' phases would be):
   p99 emit-to-receive latency, and the server's CPU time (utime + stime of every process in Hypercorn's
   process group, from ``/proc``) per 1,000 chunks delivered.

Run alone: ``python bench/stream.py [--repeats 3] [--paced-duration 30] [--profile PATH]``; ``python -m
bench`` runs it with the other workloads. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path[0] != str(REPO):
    sys.path.insert(0, str(REPO))  # run as a script, bench/ comes first and its actors.py shadows actors/

from tests.hypercorn_process import wait_until_healthy  # noqa: E402

CLIENT = REPO / "bench" / "ws_client.py"
STARTUP_TIMEOUT = 30.0
CONCURRENCIES = (1, 50, 200)
SESSIONS = {1: 20, 50: 100, 200: 200}
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16_384)), hard))


def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    """``{"median", "min", "max"}`` of repeated measurements."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


class Server:
    """``python -m hypercorn -k trio --workers 1`` serving ``app`` on a free 127.0.0.1 port, in its own
    process group (Hypercorn's main process plus the worker it spawns), killed as a group on stop."""

    def __init__(self, app: str, *, env: dict[str, str], log_path: Path) -> None:
        self.app = app
        self.env = env
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "hypercorn", "-k", "trio", "--workers", "1"]
        command += ["--bind", f"127.0.0.1:{self.port}", self.app]
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_raise_fd_limit,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.url, timeout=STARTUP_TIMEOUT, log=self.log)

    def pids(self) -> list[int]:
        """Every live process of the server's process group."""
        if self.process is None:
            return []
        group = self.process.pid
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:  # field 5, pgrp (fields[0] is field 3, state)
                found.append(int(entry))
        return found

    def worker_pid(self) -> int:
        """The Hypercorn worker (the spawned process serving the app)."""
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"spawn_main" in cmdline.read():
                        return pid
            except OSError:
                continue
        raise RuntimeError("no Hypercorn worker process found")

    def worker_rss_bytes(self) -> int:
        with open(f"/proc/{self.worker_pid()}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE

    def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM to Hypercorn's main process (a graceful shutdown of its worker), then SIGKILL to
        whatever is left of the group (at once without ``graceful``)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if graceful and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@contextmanager
def serving(app: str, *, env: dict[str, str], log_path: Path, graceful: bool = True) -> Iterator[Server]:
    server = Server(app, env=env, log_path=log_path)
    try:
        yield server.start()
    finally:
        server.stop(graceful=graceful)


def run_client(server: Server, *args: str, timeout: float, profile: Path | None = None) -> dict[str, Any]:
    """One ``ws_client.py stream`` run against ``server``; its JSON report. With ``profile``, py-spy records
    the server's worker from the moment the client releases the starts until the client is done."""
    command = [sys.executable, str(CLIENT), "stream", "--url", server.ws_url, "--timeout", str(timeout)]
    command += ["--server-pgid", str(server.pgid), *args]
    if profile is not None:
        command.append("--announce")
    client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spy: PySpy | None = None
    try:
        if profile is not None:
            assert client.stderr is not None
            for line in client.stderr:  # bounded: the client exits by its own --timeout
                if line.strip() == "released":
                    spy = PySpy(server.worker_pid(), profile)
                    break
        out, err = client.communicate(timeout=timeout + 30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        if spy is not None:
            spy.stop()
    if client.returncode != 0:
        raise RuntimeError(f"ws_client failed ({client.returncode}): {err[-2000:]}\n{server.log()}")
    report: dict[str, Any] = json.loads(out)
    if report["error_count"] or report["timed_out"]:
        raise RuntimeError(f"ws_client reported errors: {report}\n{server.log()}")
    return report


# -- profile ---------------------------------------------------------------------------------------


class PySpy:
    """``py-spy record`` of ``pid`` until :meth:`stop` (idle frames included, so the event loop's wait
    shows); collapsed stacks (``frame;frame;... count`` lines) written to ``out``. Blocking mode: the
    target pauses for each sample (a few % slower) but stacks are consistent (``--nonblocking`` gave
    torn stacks here)."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        executable = Path(sys.executable).parent / "py-spy"
        command = [str(executable) if executable.exists() else "py-spy", "record", "--pid", str(pid)]
        command += ["--rate", str(rate), "--idle", "--format", "raw", "--output", str(out)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# Where a sample's time goes: the first rule (in this order) whose marker is in its stack.
PROFILE_BUCKETS = (
    ("session activation (file create/open, fsync)", ("ActorHost._activate", "SessionStore.open")),
    ("output gate: SQLite transaction + chunk JSON", ("OutputGate._flush",)),
    ("WebSocket send: quart -> hypercorn -> wsproto -> socket", ("TrioWebsocket.send",)),
    ("chunk feed (subscribe/wait)", ("AgentRuntime.subscribe", "ChunkFeed.")),
    ("helix WS connection: send lock, send watcher, metrics", ("_Connection._send", "_Connection._watch")),
    ("run loop + scripted model", ("RunLoop.", "ScriptedAdapter.")),
    (
        "receive path (hypercorn read, commands)",
        ("TCPServer._read_data", "_serve_commands", "serve_websocket"),
    ),
    ("idle: waiting in epoll", ("EpollIOManager.get_events",)),
    ("timers: trio.sleep expiries (the scripted model's pacing)", ("Deadlines.expire", "sleep (trio")),
    ("trio scheduler", ("unrolled_run (trio",)),
)


def summarize_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Buckets (:data:`PROFILE_BUCKETS`) and the top self and inclusive functions of a collapsed-stack
    file, in percent of the event loop thread's samples."""
    self_counts: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    buckets: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if "Thread._bootstrap" in stack:
            continue  # an idle worker thread of trio's thread cache, not the event loop
        # "function (path/to/file.py:123)" -> "function (trio/_run.py)": the package dir and file, no line
        frames = [re.sub(r"\(.*?([^/]+/[^/]+?):\d+\)$", r"(\1)", frame) for frame in stack.split(";")]
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        joined = ";".join(frames)
        bucket = next(
            (name for name, markers in PROFILE_BUCKETS if any(m in joined for m in markers)), "other"
        )
        buckets[bucket] = buckets.get(bucket, 0) + count

    def share(counts: dict[str, int], limit: int) -> dict[str, float]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:limit]
        return {name: round(100 * count / max(1, total), 1) for name, count in ranked}

    return {
        "samples": total,
        "buckets_pct": share(buckets, len(buckets)),
        "self_pct": share(self_counts, top),
        "inclusive_pct": share(inclusive, top * 2),
    }


# -- workload 1 ----------------------------------------------------------------------------------


class Prefixes:
    """Fresh session ids for every client run (a session runs once per benchmark)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, label: str) -> str:
        self.count += 1
        return f"{label}{self.count}"


def _point(
    server: Server,
    prefix: str,
    concurrency: int,
    sessions: int,
    timeout: float,
    *,
    cold: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    return run_client(
        server,
        *([] if cold else ["--probe"]),
        "--sessions",
        str(sessions),
        "--concurrency",
        str(concurrency),
        "--prefix",
        prefix,
        "--agent-type",
        "burst",
        timeout=timeout,
        profile=profile,
    )


def bench_pipeline(
    workdir: Path,
    *,
    repeats: int,
    concurrencies: tuple[int, ...] = CONCURRENCIES,
    sessions: dict[int, int] | None = None,
    chunks: int = 100,
    profile: Path | None = None,
    timeout: float = 120.0,
    app: str = "bench.stream_app:server",
) -> dict[str, Any]:
    """Workload 1: ours and the ceiling, interleaved, ``repeats`` times per concurrency."""
    sessions = {c: (sessions or SESSIONS).get(c, max(c, 20)) for c in concurrencies}
    prefix = Prefixes()
    env = {"HELIX_BENCH_DATA_DIR": str(workdir / "data-pipeline"), "HELIX_BENCH_BURST_CHUNKS": str(chunks)}
    frames_path = workdir / "frames.json"
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(c): {"ours": [], "ceiling": []} for c in concurrencies
    }
    with serving(app, env=env, log_path=workdir / "hypercorn-helix.log") as ours:
        # One session records the frames the ceiling replays; a round of up to 50 warms each server up.
        warm = min(50, max(concurrencies))
        first = run_client(
            ours, "--prefix", prefix("rec"), "--dump-frames", str(frames_path), timeout=timeout
        )
        _point(ours, prefix("warm"), warm, warm, timeout)
        ceiling_env = {"HELIX_CEILING_FRAMES": str(frames_path)}
        with serving(
            "bench.ceiling_app:app", env=ceiling_env, log_path=workdir / "hypercorn-ceiling.log"
        ) as top:
            _point(top, prefix("warm"), warm, warm, timeout)
            for repeat in range(repeats):
                for c in concurrencies:
                    order = [("ours", ours), ("ceiling", top)]
                    if repeat % 2:
                        order.reverse()  # neither server always runs right after the other
                    for name, server in order:
                        runs[str(c)][name].append(
                            _point(server, prefix(f"{name[0]}c{c}-"), c, sessions[c], timeout)
                        )
        floors = [inprocess_floor(sessions, chunks) for _ in range(repeats)]
        profile_report = None
        if profile is not None:
            top_c = max(concurrencies)
            profiled = _point(ours, prefix("prof"), top_c, sessions[top_c], timeout, profile=profile)
            profile_report = {
                "concurrency": top_c,
                "chunks_per_s": profiled["chunks_per_s"],
                "path": str(profile),
                **summarize_profile(profile),
            }
    result: dict[str, Any] = {
        "chunks_per_run": first["chunks"],
        "frame_bytes": frames_path.stat().st_size,
        "sessions_per_point": {str(c): sessions[c] for c in concurrencies},
        "ratio_vs_ceiling": {},
        "chunks_per_s": {},
        "ceiling_chunks_per_s": {},
        "latency_ms": {},
        "ceiling_latency_ms": {},
        "server_cpu_us_per_chunk": {},
        "ceiling_server_cpu_us_per_chunk": {},
        "inprocess_cpu_us_per_chunk": {},
        "inprocess_chunks_per_s": {},
        "server_cpu_share": {},
        "ceiling_server_cpu_share": {},
        "client_cpu_share": {},
        "ceiling_client_cpu_share": {},
    }
    for c in concurrencies:
        key = str(c)
        ours_runs, top_runs = runs[key]["ours"], runs[key]["ceiling"]
        ratios = [o["chunks_per_s"] / t["chunks_per_s"] for o, t in zip(ours_runs, top_runs, strict=True)]
        result["ratio_vs_ceiling"][key] = summary(ratios)
        result["chunks_per_s"][key] = summary([r["chunks_per_s"] for r in ours_runs], 1)
        result["ceiling_chunks_per_s"][key] = summary([r["chunks_per_s"] for r in top_runs], 1)
        for label, group in (("latency_ms", ours_runs), ("ceiling_latency_ms", top_runs)):
            result[label][key] = {q: summary([r["latency_ms"][q] for r in group], 2) for q in ("p50", "p99")}
        for field, digits in (
            ("server_cpu_us_per_chunk", 1),
            ("server_cpu_share", 2),
            ("client_cpu_share", 2),
        ):
            result[field][key] = summary([r[field] for r in ours_runs], digits)
            result[f"ceiling_{field}"][key] = summary([r[field] for r in top_runs], digits)
        result["inprocess_cpu_us_per_chunk"][key] = summary([f[key]["cpu_us_per_chunk"] for f in floors], 1)
        result["inprocess_chunks_per_s"][key] = summary([f[key]["chunks_per_s"] for f in floors], 1)
    if profile_report is not None:
        result["profile"] = profile_report
    return result


# -- the pipeline without the WebSocket -------------------------------------------------------------


async def _inprocess_point(concurrency: int, sessions: int, chunks: int) -> dict[str, Any]:
    """The same runs as workload 1 (``stream_app``'s ``burst`` agent) inside one process: scripted model
    -> session actor -> SQLite commit -> a ``runtime.subscribe`` listener, no Hypercorn and no socket.
    Sessions are activated before the clock starts, as ``--probe`` does. CPU time per chunk delivered."""
    import trio

    from adapters import ScriptedAdapter
    from bench.stream_app import answer
    from helix import Agent, AgentRegistry
    from helix.chunks import TERMINAL_TYPES
    from helix.runtime import AgentRuntime

    registry = AgentRegistry()
    registry.register(Agent(name="burst", system_prompt="Answer at length.", max_steps=4))
    script = [{"text": answer(chunks)}]
    delivered = 0
    limiter = trio.CapacityLimiter(concurrency)
    with tempfile.TemporaryDirectory(prefix="helix-bench-inproc-") as tmp:
        runtime = AgentRuntime(
            llm_adapter=lambda env, ctx: ScriptedAdapter(script), agents=registry, data_dir=tmp
        )

        async def one(name: str) -> None:
            nonlocal delivered
            async with limiter, runtime.subscribe(name) as stream:
                await runtime.start(name, agent_type="burst", message="Tell me more.")
                async for stored in stream:
                    delivered += 1
                    if stored.type in TERMINAL_TYPES:
                        return

        async with runtime:
            names = [f"s{i}" for i in range(sessions)]
            for name in names:
                await runtime.directory.get(name)
            cpu, wall = time.process_time(), time.perf_counter()
            async with trio.open_nursery() as nursery:
                for name in names:
                    nursery.start_soon(one, name)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "concurrency": concurrency,
        "chunks": delivered,
        "chunks_per_s": round(delivered / wall, 1),
        "cpu_us_per_chunk": round(cpu / delivered * 1e6, 2),
    }


def inprocess_floor(points: dict[int, int], chunks: int, timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """:func:`_inprocess` in a fresh process (``python bench/stream.py --inprocess ...``)."""
    spec = ",".join(f"{c}:{n}" for c, n in points.items())
    done = subprocess.run(
        [sys.executable, __file__, "--inprocess", spec, "--chunks", str(chunks)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=REPO,
    )
    return {str(r["concurrency"]): r for r in json.loads(done.stdout)}


# -- workload 2 ----------------------------------------------------------------------------------


def bench_paced(
    workdir: Path,
    *,
    repeats: int,
    sessions: int = 200,
    rate: float = 30.0,
    duration: float = 30.0,
    timeout: float | None = None,
    profile: Path | None = None,
    app: str = "bench.stream_app:server",
    ceiling: bool = True,
    ceiling_duration: float = 10.0,
) -> dict[str, Any]:
    """Workload 2: ``sessions`` streams of ``rate`` chunks/s for ``duration`` s, all at once. With
    ``profile``, one more run (not counted) is recorded by py-spy. With ``ceiling``, the bare quart-trio
    endpoint then replays the first ``ceiling_duration`` seconds of a recorded paced run's frames at the same
    pace (a ``trio.sleep(1/rate)`` before each frame, as the scripted model sleeps before each event), once:
    what the stack itself costs at this load."""
    chunks = round(rate * duration)
    env = {
        "HELIX_BENCH_DATA_DIR": str(workdir / "data-paced"),
        "HELIX_BENCH_PACED_CHUNKS": str(chunks),
        "HELIX_BENCH_PACED_RATE": str(rate),
    }
    timeout = timeout or duration * 3 + 60
    prefix = Prefixes()
    samples: list[dict[str, Any]] = []

    frames_path = workdir / "paced-frames.json"

    def paced_run(server: Server, label: str, spy: Path | None = None, dump: bool = False) -> dict[str, Any]:
        report = run_client(
            server,
            *(["--dump-frames", str(frames_path)] if dump else []),
            "--probe",
            "--sessions",
            str(sessions),
            "--concurrency",
            str(sessions),
            "--prefix",
            prefix(label),
            "--agent-type",
            "paced",
            "--stagger",
            str(1.0 / rate),
            timeout=timeout,
            profile=spy,
        )
        cpu = report["server_cpu_s"]
        report["server_cpu_ms_per_1000_chunks"] = round(cpu / report["chunks"] * 1e6, 2)
        report["delivered_chunks_per_s"] = round(report["chunks"] / report["stream_window_s"], 1)
        return report

    with serving(app, env=env, log_path=workdir / "hypercorn-paced.log") as server:
        _point(server, prefix("warm"), 50, 50, timeout)  # a burst round warms the server up
        for index in range(repeats):
            samples.append(paced_run(server, "paced", dump=index == 0))
        profile_report = None
        if profile is not None:
            profiled = paced_run(server, "prof", profile)
            profile_report = {
                "p99_ms": profiled["latency_ms"]["p99"],
                "delivered_chunks_per_s": profiled["delivered_chunks_per_s"],
                "path": str(profile),
                **summarize_profile(profile),
            }
    top: dict[str, Any] | None = None
    if ceiling:
        # The first ``ceiling_duration`` seconds of a recorded run and its closing chunks: a steady-state
        # figure in a third of the time. No warm-up round: at this pace one would take as long as a run.
        recorded = json.loads(frames_path.read_text())
        text_frames = round(rate * ceiling_duration)
        recorded["frames"] = recorded["frames"][: 2 + text_frames] + recorded["frames"][-3:]
        trimmed = workdir / "paced-frames-ceiling.json"
        trimmed.write_text(json.dumps(recorded))
        ceiling_env = {"HELIX_CEILING_FRAMES": str(trimmed), "HELIX_CEILING_DELAY": str(1.0 / rate)}
        log_path = workdir / "hypercorn-paced-ceiling.log"
        with serving("bench.ceiling_app:app", env=ceiling_env, log_path=log_path) as bare:
            top = paced_run(bare, "ceiling")
            top["duration_s"] = ceiling_duration
    result: dict[str, Any] = {
        "sessions": sessions,
        "rate_per_session": rate,
        "duration_s": duration,
        "chunks_per_session": samples[0]["chunks_per_session"],
        "target_chunks_per_s": round(sessions * (chunks + 5) / duration, 1),
        "p99_ms": summary([s["latency_ms"]["p99"] for s in samples], 2),
        "p99_ms_by_run": [s["latency_ms"]["p99"] for s in samples],
        "p50_ms": summary([s["latency_ms"]["p50"] for s in samples], 2),
        # Where the tail comes from: the first second (200 runs starting within one period), the steady
        # part, the last second (runs ending, connections closing). The headline p99 is over all of them.
        "p99_ms_by_phase": {
            phase: summary([s["latency_ms_by_phase"][phase]["p99"] for s in samples], 2)
            for phase in ("start", "steady", "end")
            if all(phase in s["latency_ms_by_phase"] for s in samples)
        },
        "max_ms": summary([s["latency_ms"]["max"] for s in samples], 2),
        "delivered_chunks_per_s": summary([s["delivered_chunks_per_s"] for s in samples], 1),
        "wall_s": summary([s["wall_s"] for s in samples], 2),
        "server_cpu_ms_per_1000_chunks": summary([s["server_cpu_ms_per_1000_chunks"] for s in samples], 1),
        "server_cpu_share": summary([s["server_cpu_share"] for s in samples], 3),
        "client_cpu_share": summary([s["client_cpu_share"] for s in samples], 3),
    }
    if top is not None:
        result["ceiling"] = {
            key: top[key]
            for key in (
                "duration_s",
                "latency_ms",
                "delivered_chunks_per_s",
                "wall_s",
                "server_cpu_ms_per_1000_chunks",
            )
        }
        result["ceiling"]["server_cpu_share"] = top["server_cpu_share"]
    if profile_report is not None:
        result["profile"] = profile_report
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=100, help="text chunks per run in workload 1")
    parser.add_argument("--paced-duration", type=float, default=30.0)
    parser.add_argument("--paced-repeats", type=int, default=None)
    parser.add_argument("--skip-paced", action="store_true")
    parser.add_argument("--app", default="bench.stream_app:server", help="the helix app (A/B experiments)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy collapsed stacks of one 200-session run"
    )
    parser.add_argument("--paced-profile", type=Path, default=None, help="py-spy of one more paced run")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--inprocess", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inprocess:
        import trio

        out = []
        for point in args.inprocess.split(","):
            concurrency, sessions = (int(x) for x in point.split(":"))
            out.append(trio.run(_inprocess_point, concurrency, sessions, args.chunks))
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory(prefix="helix-bench-stream-") as tmp:
        result: dict[str, Any] = {}
        if not args.skip_pipeline:
            result["pipeline"] = bench_pipeline(
                Path(tmp), repeats=args.repeats, chunks=args.chunks, profile=args.profile, app=args.app
            )
        if not args.skip_paced:
            result["paced"] = bench_paced(
                Path(tmp),
                repeats=args.paced_repeats or args.repeats,
                duration=args.paced_duration,
                profile=args.paced_profile,
                app=args.app,
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
