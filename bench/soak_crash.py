"""Crash soak through a real server: SIGKILL a Hypercorn process serving streaming sessions, many times.

A Hypercorn process (``tests/reliability/served.py``) serves ``--sessions`` sessions, each running the
``looper`` agent (a long streaming run), each followed by a WebSocket client and driven by an HTTP client
(start, or resume ``continue`` after a crash, then the next start once the run completed). At a random
moment the whole process group is killed with SIGKILL; then every session file must pass
``PRAGMA integrity_check`` (opened read-only while no server runs), and the server is started again. After
every restart, before anything else touches a session:

- its first ``/status`` is settled (not executing) and agrees with the last terminal chunk of its history;
- its history has seqs 1..n (no repeat, no gap), runs never interleave, and every run ends with exactly
  one terminal chunk (the run the kill cut short gets ``run_interrupted``, reason ``crash``);
- every chunk its WebSocket client received (before any kill) is in ``/history`` with the same seq and
  payload, and the client never saw a seq twice or out of order (it reconnects from its last seq + 1).

After the last kill every session is resumed (or started) until its latest run completed. Prints the
counts as one JSON object; exits 1 (with the counts so far and the violation) if any check fails.

    python bench/soak_crash.py [--kills 50] [--sessions 20] [--seed 1]

``tests/reliability/test_crash_soak.py`` runs the same :func:`soak` with fewer kills and sessions.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stores import file_for_name
from tests.reliability.checks import TERMINAL_STATUS, check_runs, integrity_check_all, settled_history
from tests.reliability.process import Served
from tests.server.support import path


@dataclass(frozen=True, kw_only=True)
class SoakConfig:
    kills: int = 50
    sessions: int = 20
    seed: int = 1
    min_uptime: float = 0.3
    """Seconds between the end of the post-restart checks and the kill: uniform in [min, max]."""
    max_uptime: float = 1.5
    loop_steps: int = 12
    loop_delay: float = 0.01
    """Seconds per model event of the ``looper`` agent (about 8 events per step)."""
    final_timeout: float = 120.0
    """Bound on the last phase (every session resumed to completion)."""


class SoakFailure(AssertionError):
    def __init__(self, message: str, counts: dict[str, Any]) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass(kw_only=True)
class SessionClient:
    """One session's WebSocket follower and HTTP driver; what it received survives every kill."""

    sid: str
    received: dict[int, dict[str, Any]] = field(default_factory=dict)
    ended: dict[str, trio.Event] = field(default_factory=dict)
    _progress: trio.Event = field(default_factory=trio.Event)

    @property
    def last_seq(self) -> int:
        return max(self.received, default=0)

    def ended_event(self, run_id: str) -> trio.Event:
        return self.ended.setdefault(run_id, trio.Event())

    async def caught_up(self, seq: int) -> None:
        """Wait until the follower has received ``seq``."""
        while self.last_seq < seq:
            await self._progress.wait()

    async def follow(self, ws_base: str, counts: Counter[str]) -> None:
        """Follow the session from the seq after the last one received; reconnect while the server lives
        (the caller cancels this when it kills the server)."""
        while True:
            url = f"{ws_base}/sessions/{quote(self.sid, safe='')}/ws?fromSeq={self.last_seq + 1}"
            try:
                async with open_websocket_url(url) as ws:
                    counts["ws_connects"] += 1
                    while True:
                        self._take(json.loads(await ws.get_message()), counts)
            except (ConnectionClosed, HandshakeError, OSError, trio.BrokenResourceError):
                counts["ws_disconnects"] += 1
            await trio.sleep(0.05)  # reconnect backoff while the server is going down or coming up

    def _take(self, frame: dict[str, Any], counts: Counter[str]) -> None:
        if "seq" not in frame:
            return
        seq = frame["seq"]
        if seq != self.last_seq + 1:
            raise AssertionError(f"{self.sid!r}: got seq {seq} after {self.last_seq} (a repeat or a gap)")
        self.received[seq] = frame
        counts["chunks_received"] += 1
        self._progress.set()
        self._progress = trio.Event()
        if frame["type"] in TERMINAL_STATUS:
            self.ended_event(frame["runId"]).set()

    async def drive(self, http: httpx.AsyncClient, counts: Counter[str], final: bool) -> None:
        """Keep the session streaming: start a run, or resume one a crash interrupted, and wait for its
        end (seen by the follower). With ``final``, return once the latest run completed."""
        while True:
            status = (await http.get(path(self.sid, "status"))).json()
            if status["isExecuting"]:
                await self.ended_event(status["runId"]).wait()
                continue
            if status["status"] == "completed" and final:
                return
            if status["status"] == "interrupted":
                response = await http.post(
                    path(self.sid, "resume"), json={"agentType": "looper", "options": {"mode": "continue"}}
                )
                kind = "resumes"
            else:  # idle, completed, or failed (the looper never fails; a new start is still right)
                response = await http.post(
                    path(self.sid, "start"), json={"agentType": "looper", "input": {"message": "go on"}}
                )
                kind = "starts"
            if response.status_code == 409:  # a run began between the status and the command
                continue
            assert response.status_code == 202, f"{self.sid!r}: {kind} answered {response.text}"
            counts[kind] += 1
            await self.ended_event(response.json()["runId"]).wait()


async def _verify(
    http: httpx.AsyncClient, clients: list[SessionClient], counts: Counter[str]
) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The checks after a restart (see the module docstring), session by session; returns each session's
    status and history."""
    found: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for client in clients:
        status, chunks, spans = await settled_history(http, client.sid)
        found[client.sid] = (status, chunks)
        by_seq = {chunk["seq"]: chunk for chunk in chunks}
        for seq, chunk in client.received.items():
            stored = by_seq.get(seq)
            assert stored == chunk, f"{client.sid!r}: received seq {seq} {chunk} but history has {stored}"
        counts["chunks_verified"] += len(client.received)
        counts["runs_verified"] += len(spans)
    return found


def _summary(histories: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Counts over the final histories (empty until the last phase)."""
    runs: Counter[str] = Counter()
    for sid, chunks in histories.items():
        runs["history_chunks"] += len(chunks)
        for span in check_runs(sid, chunks):
            runs["runs"] += 1
            ended = span.terminal["type"] if span.terminal else "none"
            if span.first["type"] == "run_resumed":
                runs["resumed_runs"] += 1
                runs["resumed_runs_completed"] += ended == "run_completed"
            runs["runs_completed"] += ended == "run_completed"
            if ended == "run_interrupted" and span.terminal and span.terminal.get("reason") == "crash":
                runs["runs_interrupted_by_crash"] += 1
    return dict(runs)


async def soak(workdir: Path, config: SoakConfig | None = None) -> dict[str, Any]:
    """Run the soak in ``workdir``; return the counts. Raises :class:`SoakFailure` (with the counts so
    far) on the first violated check or error."""
    config = config or SoakConfig()
    rng = random.Random(config.seed)
    counts: Counter[str] = Counter()
    served = Served(
        data_dir=workdir / "data",
        log_path=workdir / "hypercorn.log",
        profile="plain",
        env={"HELIX_LOOP_STEPS": str(config.loop_steps), "HELIX_LOOP_DELAY": str(config.loop_delay)},
    )
    clients = [SessionClient(sid=f"soak-{n}") for n in range(config.sessions)]
    histories: dict[str, list[dict[str, Any]]] = {}
    began = time.monotonic()
    try:
        for life in range(config.kills + 1):
            await trio.to_thread.run_sync(served.start)
            counts["server_starts"] += 1
            async with httpx.AsyncClient(base_url=served.base_url, timeout=30.0) as http:
                with trio.fail_after(60):
                    await _verify(http, clients, counts)
                final = life == config.kills
                async with trio.open_nursery() as nursery:
                    for client in clients:
                        nursery.start_soon(client.follow, served.ws_base, counts)
                    if final:
                        with trio.fail_after(config.final_timeout):
                            async with trio.open_nursery() as drivers:
                                for client in clients:
                                    drivers.start_soon(client.drive, http, counts, True)
                            for client in clients:  # let every follower read to the end of its session
                                last = (await http.get(path(client.sid, "snapshot"))).json()["lastSeq"]
                                await client.caught_up(last)
                    else:
                        for client in clients:
                            nursery.start_soon(_drive_until_killed, client, http, counts)
                        await trio.sleep(rng.uniform(config.min_uptime, config.max_uptime))
                        await trio.to_thread.run_sync(served.kill)
                        counts["kills"] += 1
                    nursery.cancel_scope.cancel()
                if final:
                    with trio.fail_after(60):
                        found = await _verify(http, clients, counts)
                    for client in clients:
                        status, chunks = found[client.sid]
                        assert status["status"] == "completed", f"{client.sid!r} ended {status}"
                        # across every kill and reconnect the client got each chunk exactly once
                        assert [client.received[seq] for seq in sorted(client.received)] == chunks
                        histories[client.sid] = chunks
                    counts["sessions_completed"] = len(clients)
                    await trio.to_thread.run_sync(served.stop)
            for client in clients:
                assert file_for_name(served.data_dir, client.sid).exists() or not client.received
            counts["integrity_checks"] += integrity_check_all(served.data_dir)
    except Exception as exc:  # an AssertionError, or a group of them from the clients' nursery
        raise SoakFailure(_describe(exc), _counts(counts, clients, histories, began)) from exc
    finally:
        served.kill()
    return _counts(counts, clients, histories, began)


async def _drive_until_killed(client: SessionClient, http: httpx.AsyncClient, counts: Counter[str]) -> None:
    try:
        await client.drive(http, counts, False)
    except (httpx.TransportError, json.JSONDecodeError):
        counts["commands_cut_by_kill"] += 1  # the kill landed while a command was on the wire


def _counts(
    counts: Counter[str],
    clients: list[SessionClient],
    histories: dict[str, list[dict[str, Any]]],
    began: float,
) -> dict[str, Any]:
    return {
        "sessions": len(clients),
        **dict(sorted(counts.items())),
        **_summary(histories),
        "violations": 0,
        "seconds": round(time.monotonic() - began, 1),
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = SoakConfig(kills=args.kills, sessions=args.sessions, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="helix-soak-crash-") as scratch:
        try:
            counts = trio.run(soak, Path(scratch), config)
        except SoakFailure as failure:
            print(json.dumps({**failure.counts, "violations": 1, "violation": str(failure)}))
            print(f"log: {Path(scratch) / 'hypercorn.log'}", file=sys.stderr)
            sys.exit(1)
    print(json.dumps({**counts, "command": " ".join(sys.argv)}))


if __name__ == "__main__":
    main()
