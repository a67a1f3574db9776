"""Workload 4 of the benchmark suite (issue 8): sessions at rest.

- ``per_hibernated_session_bytes``: 10,000 session files on disk, none live: the RSS delta of opening an
  :class:`~helix.runtime.AgentRuntime` over them (the directory's index entries), divided by 10,000.
  The files are copies of one empty session file (``bench/actors.py``'s ``_make_sessions``).
- ``per_live_idle_actor_bytes``: 1,000 sessions that each ran one short run (a real session file: run,
  messages, checkpoint, chunks) and are now idle with their actor live (file open, gate flusher waiting):
  the RSS delta over a runtime that ran one such session, divided by 1,000.
- ``cold_activation_ms``: the same sessions evicted (file closed), then ``directory.get(name)`` of 400 of
  them, in three passes (each pass one sample of p50 and p99), timed up to the session actor's
  ``on_activate`` having returned (it loads the session head and checks for crashed runs), as
  ``bench/actors.py`` times it for a bare actor. The first pass runs while the kernel still writes back
  the 1,000 sessions just created (slower: ext4 metadata operations wait), the others on a quiet disk.
- ``per_idle_websocket_bytes``: a real Hypercorn process (``bench.stream_app:server``) and 1,000 WebSockets
  held open by ``bench/ws_client.py idle`` in another process: the worker's RSS delta (``/proc``) divided
  by 1,000. First on 1,000 new sessions (``..._with_its_actor``: an open WebSocket subscribes, which
  activates the session's actor and keeps it live, file open, while the socket is attached), then a second
  WebSocket on each of the same sessions, whose actors are already live (``per_idle_websocket_bytes``: the
  connection alone). For comparison, the same 1,000 idle WebSockets on the bare quart-trio endpoint
  (``bench.ceiling_app:app``): what Hypercorn and Quart spend before helix adds anything.
- ``mass_hibernation``: 200 sessions that each streamed 300 chunks, one commit per chunk as a paced stream
  makes, go idle together and the idle reaper hibernates them: the longest event-loop stall meanwhile
  (every other session's chunks wait that long) and how long until every file was closed. Closing a file
  folds its WAL into it with two fsyncs, which the runtime does in worker threads.

Each in-process phase runs in its own process (``python bench/rest.py --phase NAME``), so one phase's heap
does not blur another's RSS. Run alone: ``python bench/rest.py [--repeats 3]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stream import CLIENT, Server, serving, summary  # noqa: E402

HIBERNATED = 10_000
LIVE = 1_000
WEBSOCKETS = 1_000
COLD_PASSES = 3
COLD_SESSIONS = 400
HIBERNATING = 200
HIBERNATING_CHUNKS = 300


def _runtime(data_dir: Path) -> Any:
    from adapters import ScriptedAdapter
    from helix import Agent, AgentRegistry
    from helix.runtime import AgentRuntime

    registry = AgentRegistry()
    registry.register(Agent(name="tiny", system_prompt="Answer briefly.", max_steps=2))
    return AgentRuntime(
        llm_adapter=lambda env, ctx: ScriptedAdapter([{"text": "Noted; nothing else to do."}]),
        agents=registry,
        data_dir=data_dir,
        idle_timeout=3600.0,
        max_live_actors=20_000,
    )


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": round(statistics.median(ordered), 3), "p99": round(p99, 3)}


async def phase_hibernated(root: Path, count: int = HIBERNATED) -> dict[str, Any]:
    from bench.actors import _make_sessions, _rss_bytes

    data_dir = root / "hibernated"
    _make_sessions(data_dir, [f"h-{i}" for i in range(count)])
    runtime = _runtime(data_dir)  # imports done and objects built before the baseline
    gc.collect()
    before = _rss_bytes()
    async with runtime:
        gc.collect()
        at_rest = _rss_bytes()
        stats = runtime.directory.statistics()
        assert stats.hibernated_actors == count and stats.live_actors == 0, stats
    return {"sessions_on_disk": count, "per_hibernated_session_bytes": round((at_rest - before) / count, 1)}


async def phase_live_and_cold(root: Path, count: int = LIVE) -> dict[str, Any]:
    from bench.actors import _rss_bytes

    names = [f"l-{i}" for i in range(count)]
    async with _runtime(root / "live") as runtime:
        # One session first, so that code paths and caches common to all sessions are not counted.
        await (await runtime.start("warm-up", agent_type="tiny", message="hi")).result()
        gc.collect()
        before = _rss_bytes()
        for name in names:
            result = await (await runtime.start(name, agent_type="tiny", message="hi")).result()
            assert result.status == "completed", result
        gc.collect()
        after = _rss_bytes()
        stats = runtime.directory.statistics()
        assert stats.live_actors == count + 1, stats
        for name in names:
            await runtime.directory.evict(name)
        passes = []
        for _ in range(COLD_PASSES):
            samples = []
            for name in names[:COLD_SESSIONS]:
                started = time.perf_counter()
                await runtime.directory.get(name)
                samples.append((time.perf_counter() - started) * 1000)
                await runtime.directory.evict(name)
            passes.append(_quantiles(samples))
    return {
        "live_idle_actors": count,
        "per_live_idle_actor_bytes": round((after - before) / count),
        "cold_activation_ms": passes,
    }


class LoopLag:
    """The event loop's longest stall: a task that asks to wake every millisecond records how late it woke.
    A stall of the loop delays every session's chunks by as much."""

    def __init__(self) -> None:
        self.worst_s = 0.0

    async def run(self) -> None:
        import trio

        while True:
            asked = trio.current_time() + 0.001
            await trio.sleep_until(asked)
            self.worst_s = max(self.worst_s, trio.current_time() - asked)


async def phase_hibernation(
    root: Path, count: int = HIBERNATING, chunks: int = HIBERNATING_CHUNKS
) -> dict[str, Any]:
    """``count`` sessions each stream a ``chunks``-chunk answer, one commit per chunk as a paced stream
    makes (a 1 ms model delay), and go idle together; the idle reaper then hibernates them in one sweep
    (``idle_timeout``). Measured: the longest event-loop stall from the sweep until every file is closed,
    and how long that took."""
    import trio

    from adapters import ScriptedAdapter
    from bench.stream_app import answer
    from helix import Agent, AgentRegistry
    from helix.runtime import AgentRuntime

    registry = AgentRegistry()
    registry.register(Agent(name="streamer", system_prompt="Answer at length.", max_steps=2))
    idle_timeout = 2.0
    script = [{"text": answer(chunks)}]
    runtime = AgentRuntime(
        llm_adapter=lambda env, ctx: ScriptedAdapter(script, chars_per_chunk=8, delay=0.001),
        agents=registry,
        data_dir=root / "hibernation",
        idle_timeout=idle_timeout,
        max_live_actors=20_000,
    )
    names = [f"z-{i}" for i in range(count)]
    async with runtime:

        async def one(name: str) -> None:
            result = await (await runtime.start(name, agent_type="streamer", message="hi")).result()
            assert result.status == "completed", result

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(one, name)
        idle_since = trio.current_time()
        assert runtime.directory.statistics().live_actors == count
        lag = LoopLag()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lag.run)
            # Polled: the directory has no event for "every session hibernated", and 5 ms is finer than
            # what is measured.
            while runtime.directory.statistics().live_actors:  # noqa: ASYNC110
                await trio.sleep(0.005)
            done = trio.current_time()
            nursery.cancel_scope.cancel()
    return {
        "sessions": count,
        "chunks_per_session": chunks,
        "longest_loop_stall_ms": round(lag.worst_s * 1000, 2),
        "all_closed_after_sweep_ms": round((done - idle_since - idle_timeout) * 1000, 1),
    }


PHASES = {
    "hibernated": phase_hibernated,
    "live_and_cold": phase_live_and_cold,
    "hibernation": phase_hibernation,
}


def _run_phase(name: str) -> Any:
    import trio

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16_384)), hard))
    with tempfile.TemporaryDirectory(prefix="helix-bench-rest-") as tmp:
        return trio.run(PHASES[name], Path(tmp))


def in_child(name: str, timeout: float = 300.0) -> Any:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(done.stdout)


# -- idle WebSockets -------------------------------------------------------------------------------


class IdleClient:
    """``ws_client.py idle``: holds ``count`` WebSockets open until :meth:`close`."""

    def __init__(self, server: Server, prefix: str, count: int, timeout: float) -> None:
        command = [sys.executable, str(CLIENT), "idle", "--url", server.ws_url, "--sessions", str(count)]
        command += ["--prefix", prefix, "--timeout", str(timeout)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # bounded: the client gives up after its --timeout
        if not line:
            self.close()
            raise RuntimeError("the idle client ended before all its WebSockets were open")
        ready = json.loads(line)
        if ready["ready"] != count:
            self.close()
            raise RuntimeError(f"idle client opened {ready} of {count} WebSockets")

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.communicate("stop\n", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _activations(server: Server) -> int:
    """The server's count of finished actor activations (``/metrics``)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "helix_actor_activations":
            return int(family.samples[0].value)
    raise RuntimeError("the server's /metrics has no helix_actor_activations")


def _settled_rss(server: Server, activations: int | None = None, timeout: float = 60.0) -> int:
    """The worker's RSS once it is done with what the client started: with ``activations``, once that
    many session actors have finished activating (a WebSocket's attach activates its session in the
    background: a new session's file is created in a worker thread, and a thousand take 1.5-2 s), then
    half a second more for handshakes it is still working through."""
    if activations is not None:
        give_up = time.monotonic() + timeout
        while _activations(server) < activations:
            if time.monotonic() > give_up:
                raise RuntimeError(f"fewer than {activations} actors activated after {timeout} s")
            time.sleep(0.1)
    time.sleep(0.5)
    return server.worker_rss_bytes()


def bench_idle_websockets(workdir: Path, count: int = WEBSOCKETS, timeout: float = 120.0) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"HELIX_BENCH_DATA_DIR": str(workdir / "data-ws"), "HELIX_BENCH_IDLE": "3600"}
    log_path = workdir / "hypercorn-ws.log"
    with serving("bench.stream_app:server", env=env, log_path=log_path, graceful=False) as server:
        IdleClient(server, "warm", 50, timeout).close()  # code paths and caches of a connection
        base = _settled_rss(server, activations=50)
        first = IdleClient(server, "idle", count, timeout)
        try:
            with_actor = _settled_rss(server, activations=50 + count)
            second = IdleClient(server, "idle", count, timeout)
            try:
                both = _settled_rss(server, activations=50 + count)
            finally:
                second.close()
        finally:
            first.close()
    # The same count on the bare quart-trio endpoint (bench/ceiling_app.py): what Hypercorn and Quart
    # spend on an idle WebSocket before helix adds anything.
    log_path = workdir / "hypercorn-ceiling-ws.log"
    with serving("bench.ceiling_app:app", env={}, log_path=log_path, graceful=False) as server:
        IdleClient(server, "warm", 50, timeout).close()
        bare_base = _settled_rss(server)
        bare = IdleClient(server, "idle", count, timeout)
        try:
            bare_after = _settled_rss(server)
        finally:
            bare.close()
    return {
        "websockets": count,
        "per_idle_websocket_bytes": round((both - with_actor) / count),
        "per_idle_websocket_with_its_actor_bytes": round((with_actor - base) / count),
        "ceiling_per_idle_websocket_bytes": round((bare_after - bare_base) / count),
    }


def bench_rest(workdir: Path, *, repeats: int, live_repeats: int = 1, ws_repeats: int = 1) -> dict[str, Any]:
    """``repeats`` child processes for the hibernated sessions; ``live_repeats`` for the live actors, each
    timing ``COLD_PASSES`` passes of cold activations over its 1,000 sessions (a pass is one sample of
    p50/p99); ``ws_repeats`` servers for the idle WebSockets."""
    hibernated = [in_child("hibernated") for _ in range(repeats)]
    live = [in_child("live_and_cold") for _ in range(live_repeats)]
    cold = [one for x in live for one in x["cold_activation_ms"]]
    sockets = [bench_idle_websockets(workdir / f"ws{i}") for i in range(ws_repeats)]
    hibernating = [in_child("hibernation") for _ in range(live_repeats)]
    return {
        "repeats": {
            "hibernated": repeats,
            "live": live_repeats,
            "cold_passes": len(cold),
            "websockets": ws_repeats,
        },
        "sessions_on_disk": HIBERNATED,
        "live_idle_actors": LIVE,
        "idle_websockets": WEBSOCKETS,
        "rss_bytes_per_hibernated_session": summary(
            [h["per_hibernated_session_bytes"] for h in hibernated], 1
        ),
        "rss_bytes_per_live_idle_actor": summary([x["per_live_idle_actor_bytes"] for x in live], 0),
        "cold_activation_p50_ms": summary([c["p50"] for c in cold]),
        "cold_activation_p99_ms": summary([c["p99"] for c in cold]),
        "rss_bytes_per_idle_websocket": summary([s["per_idle_websocket_bytes"] for s in sockets], 0),
        "rss_bytes_per_idle_websocket_with_its_actor": summary(
            [s["per_idle_websocket_with_its_actor_bytes"] for s in sockets], 0
        ),
        "ceiling_rss_bytes_per_idle_websocket": summary(
            [s["ceiling_per_idle_websocket_bytes"] for s in sockets], 0
        ),
        "mass_hibernation": {
            "sessions": HIBERNATING,
            "chunks_per_session": HIBERNATING_CHUNKS,
            "longest_loop_stall_ms": summary([h["longest_loop_stall_ms"] for h in hibernating], 2),
            "all_closed_after_sweep_ms": summary([h["all_closed_after_sweep_ms"] for h in hibernating], 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--live-repeats", type=int, default=1)
    parser.add_argument("--ws-repeats", type=int, default=1)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_run_phase(args.phase)))
        return
    with tempfile.TemporaryDirectory(prefix="helix-bench-rest-") as tmp:
        print(
            json.dumps(
                bench_rest(
                    Path(tmp),
                    repeats=args.repeats,
                    live_repeats=args.live_repeats,
                    ws_repeats=args.ws_repeats,
                ),
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
