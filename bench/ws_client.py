"""The WebSocket client of the stream benchmarks: a separate process, trio + trio-websocket.

``stream`` mode (workloads 1 and 2): opens ``--sessions`` WebSockets (``/sessions/{sid}/ws?fromSeq=1``,
one per session), and once every one is open, ``--concurrency`` workers each send ``start`` on their
sessions one after another and read every frame until the run's terminal chunk. Each chunk's latency is
the client's wall clock when ``get_message`` returned, in epoch ms, minus the chunk's ``ts`` (its emit time,
epoch ms; helix stamps whole milliseconds, so a latency may read up to 1 ms high). ``--stagger`` spreads the
workers' first starts evenly over that many seconds (the phases of independent streams). ``--probe``
sends each connection an ``interrupt`` (nothing runs, so the answer is an error frame) and waits for the
answer before the clock starts: the session's actor is live then, its file created and open. Prints one JSON
object: chunks, wall time (from the release of the starts to the last terminal chunk), chunks/s, latency
quantiles (overall, and by phase: the first and last second of the stream and the steady part between),
the client's own CPU time (to see whether the client, not the server, was the bottleneck), and any
error. ``--dump-frames PATH`` writes the ack and chunk frames of the first session (the ceiling server
replays them).

``idle`` mode (workload 4): opens ``--sessions`` WebSockets and holds them; prints ``{"ready": n}`` once all
are open, then waits for a line (or EOF) on stdin, closes them and prints ``{"closed": n}``.

Every wait is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

TERMINALS = ('"type":"run_completed"', '"type":"run_failed"', '"type":"run_interrupted"')
CONNECT_AT_ONCE = 64
CLK_TCK = os.sysconf("SC_CLK_TCK")
PHASE_EDGE_MS = 1000.0


def quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def by_phase(emitted: list[tuple[float, float]], edge_ms: float) -> dict[str, dict[str, float]]:
    """Latency quantiles of the chunks emitted in the first ``edge_ms`` of the stream (``start``: runs
    starting at once), in the last ``edge_ms`` (``end``: runs finishing and connections closing) and in
    between (``steady``), with each phase's chunk count. A phase with no chunk is left out."""
    if not emitted:
        return {}
    first = min(ts for ts, _ in emitted)
    last = max(ts for ts, _ in emitted)
    phases: dict[str, list[float]] = {"start": [], "steady": [], "end": []}
    for ts, latency in emitted:
        phase = "start" if ts < first + edge_ms else "end" if ts > last - edge_ms else "steady"
        phases[phase].append(latency)
    figures = {}
    for name, values in phases.items():
        if values:
            values.sort()
            figures[name] = {
                "chunks": len(values),
                "p50": round(quantile(values, 0.50), 2),
                "p99": round(quantile(values, 0.99), 2),
            }
    return figures


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in process group ``pgid`` (the server), from ``/proc``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp; utime and stime follow at 11 and 12
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16_384)), hard))


class StreamRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sessions = [f"{args.prefix}-{i:05d}" for i in range(args.sessions)]
        self.opened = 0
        self.all_open = trio.Event()
        self.go = trio.Event()
        self.released_at = 0.0
        self.records: dict[str, list[tuple[float, str]]] = {}
        self.acks: dict[str, str] = {}
        self.finished_at: dict[str, float] = {}
        self.errors: list[str] = []
        self.remaining = len(self.sessions)
        self.server_cpu = [0.0, 0.0]

    def _server_cpu(self) -> float:
        return group_cpu_seconds(self.args.server_pgid) if self.args.server_pgid else 0.0

    def _opened_one(self) -> None:
        self.opened += 1
        if self.opened == len(self.sessions):
            self.all_open.set()

    async def worker(self, index: int, group: list[str], limiter: trio.CapacityLimiter) -> None:
        async with AsyncExitStack() as stack:
            sockets: list[tuple[str, WebSocketConnection]] = []
            for sid in group:
                try:
                    async with limiter:
                        ws = await stack.enter_async_context(
                            open_websocket_url(
                                f"{self.args.url}/sessions/{sid}/ws?fromSeq=1",
                                connect_timeout=self.args.timeout,
                                disconnect_timeout=5,
                            )
                        )
                    if self.args.probe:
                        await self.probe(sid, ws)
                    sockets.append((sid, ws))
                except (OSError, HandshakeError, ConnectionClosed) as exc:
                    self.errors.append(f"{sid}: connect failed: {exc!r}")
                self._opened_one()
            await self.go.wait()
            if self.args.stagger > 0:
                await trio.sleep(self.args.stagger * index / self.args.concurrency)
            for sid, ws in sockets:
                await self.stream_one(sid, ws)

    async def probe(self, sid: str, ws: WebSocketConnection) -> None:
        """An ``interrupt`` with nothing running: answered by an error frame once the session's actor is
        live (its file open), so activation happens before the clock starts."""
        await ws.send_message('{"type":"interrupt"}')
        text = await ws.get_message()
        if '"type":"error"' not in text:
            self.errors.append(f"{sid}: unexpected answer to the probe: {str(text)[:200]}")

    async def stream_one(self, sid: str, ws: WebSocketConnection) -> None:
        start = {"type": "start", "agentType": self.args.agent_type, "input": {"message": "Tell me more."}}
        frames: list[tuple[float, str]] = []
        self.records[sid] = frames
        clock = time.time
        try:
            await ws.send_message(json.dumps(start))
            while True:
                text = await ws.get_message()
                received = clock() * 1000
                if isinstance(text, bytes):
                    self.errors.append(f"{sid}: binary frame")
                    return
                if '"seq":' not in text:  # an ack or an error frame, not a chunk
                    if '"type":"ack"' in text:
                        self.acks[sid] = text
                        continue
                    self.errors.append(f"{sid}: {text[:200]}")
                    return
                frames.append((received, text))
                if any(marker in text for marker in TERMINALS):
                    self.finished_at[sid] = time.perf_counter()
                    self.remaining -= 1
                    if self.remaining == 0:
                        self.server_cpu[1] = self._server_cpu()
                    return
        except ConnectionClosed as exc:
            self.errors.append(f"{sid}: connection closed: {exc.reason}")

    async def run(self) -> dict[str, Any]:
        args = self.args
        concurrency = min(args.concurrency, len(self.sessions))
        groups = [self.sessions[w::concurrency] for w in range(concurrency)]
        limiter = trio.CapacityLimiter(CONNECT_AT_ONCE)
        timed_out = False
        cpu_before = cpu_after = 0.0
        with trio.move_on_after(args.timeout) as scope:
            async with trio.open_nursery() as nursery:
                for index, group in enumerate(groups):
                    nursery.start_soon(self.worker, index, group, limiter)
                await self.all_open.wait()
                if self.args.announce:
                    print("released", file=sys.stderr, flush=True)
                self.server_cpu[0] = self._server_cpu()
                cpu_before = time.process_time()
                self.released_at = time.perf_counter()
                self.go.set()
        cpu_after = time.process_time()
        timed_out = scope.cancelled_caught
        return self.report(timed_out, cpu_after - cpu_before)

    def report(self, timed_out: bool, client_cpu_s: float) -> dict[str, Any]:
        latencies: list[float] = []
        emitted: list[tuple[float, float]] = []  # (emit time, latency) for the by-phase figures
        chunks = 0
        gaps = 0
        first_emit = float("inf")
        last_receive = 0.0
        for frames in self.records.values():
            expected = None
            for received, text in frames:
                chunk = json.loads(text)
                latencies.append(received - chunk["ts"])
                emitted.append((chunk["ts"], received - chunk["ts"]))
                if expected is not None and chunk["seq"] != expected:
                    gaps += 1
                expected = chunk["seq"] + 1
                first_emit = min(first_emit, chunk["ts"])
                last_receive = max(last_receive, received)
            chunks += len(frames)
        latencies.sort()
        finished = len(self.finished_at)
        wall = (max(self.finished_at.values()) - self.released_at) if self.finished_at else 0.0
        server_cpu = self.server_cpu[1] - self.server_cpu[0] if self.remaining == 0 else 0.0
        if self.args.dump_frames and self.records:
            first = self.sessions[0]
            with open(self.args.dump_frames, "w", encoding="utf-8") as file:
                json.dump(
                    {"ack": self.acks.get(first, ""), "frames": [t for _, t in self.records[first]]}, file
                )
        return {
            "sessions": len(self.sessions),
            "concurrency": self.args.concurrency,
            "sessions_finished": finished,
            "chunks": chunks,
            "chunks_per_session": round(chunks / max(1, len(self.records)), 1),
            "seq_gaps": gaps,
            "wall_s": round(wall, 4),
            "stream_window_s": round((last_receive - first_emit) / 1000, 4) if chunks else 0.0,
            "chunks_per_s": round(chunks / wall, 1) if wall > 0 else 0.0,
            "latency_ms": {
                "p50": round(quantile(latencies, 0.50), 2),
                "p90": round(quantile(latencies, 0.90), 2),
                "p99": round(quantile(latencies, 0.99), 2),
                "max": round(latencies[-1], 2) if latencies else 0.0,
            },
            "latency_ms_by_phase": by_phase(emitted, PHASE_EDGE_MS),
            "server_cpu_s": round(server_cpu, 3),
            "server_cpu_us_per_chunk": round(server_cpu / chunks * 1e6, 2) if chunks else 0.0,
            "server_cpu_share": round(server_cpu / wall, 3) if wall > 0 else 0.0,
            "client_cpu_s": round(client_cpu_s, 3),
            "client_cpu_share": round(client_cpu_s / wall, 3) if wall > 0 else 0.0,
            "timed_out": timed_out,
            "errors": self.errors[:10],
            "error_count": len(self.errors),
        }


async def run_idle(args: argparse.Namespace) -> None:
    opened = 0
    failed = 0
    all_open = trio.Event()
    stop = trio.Event()
    limiter = trio.CapacityLimiter(CONNECT_AT_ONCE)

    def settle() -> None:
        if opened + failed == args.sessions:
            all_open.set()

    async def hold(sid: str) -> None:
        nonlocal opened, failed
        try:
            async with limiter:
                stack = AsyncExitStack()
                await stack.enter_async_context(
                    open_websocket_url(
                        f"{args.url}/sessions/{sid}/ws?fromSeq=1",
                        connect_timeout=args.timeout,
                        disconnect_timeout=5,
                    )
                )
        except (OSError, HandshakeError, ConnectionClosed):
            failed += 1
            settle()
            return
        async with stack:
            opened += 1
            settle()
            await stop.wait()

    async def wait_for_stop() -> None:
        await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        stop.set()

    with trio.move_on_after(args.timeout):
        async with trio.open_nursery() as nursery:
            for i in range(args.sessions):
                nursery.start_soon(hold, f"{args.prefix}-{i:05d}")
            await all_open.wait()
            print(json.dumps({"ready": opened, "failed": failed}), flush=True)
            nursery.start_soon(wait_for_stop)
            await stop.wait()
    print(json.dumps({"closed": opened}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["stream", "idle"])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--prefix", default="s")
    parser.add_argument("--agent-type", default="burst")
    parser.add_argument("--stagger", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--dump-frames", default=None)
    parser.add_argument("--server-pgid", type=int, default=0, help="read this group's CPU time in the window")
    parser.add_argument("--announce", action="store_true", help="print 'released' to stderr at the start")
    parser.add_argument(
        "--probe",
        action="store_true",
        help="before the clock starts, wait until each session's actor is live",
    )
    args = parser.parse_args()
    raise_fd_limit()
    if args.mode == "idle":
        trio.run(run_idle, args)
    else:
        print(json.dumps(trio.run(StreamRun(args).run)))


if __name__ == "__main__":
    main()
