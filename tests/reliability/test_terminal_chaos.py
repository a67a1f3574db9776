"""Exactly one terminal chunk per run, whatever ends it: a chaos test that races a run's own completion
against interrupt and abort (sent after a random delay of about a run's length) over hundreds of runs in
several sessions, while the server process is SIGKILLed (whole group) at random moments and restarted.

After every restart, for every session: the first ``/status`` is settled and agrees with the last
terminal chunk of ``/history``; every run in history begins with ``run_started`` / ``run_resumed`` and
ends with exactly one terminal chunk, nothing of it after, and no two runs interleave (:mod:`.checks`);
every run a 202 named is in history (its first chunk committed before the answer); and every 202 of an
interrupt or abort agrees with the terminal chunk of the run it named.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trio

from tests.server.support import path, wait_status

from .checks import TERMINAL_STATUS, RunSpan, settled_history
from .process import Served

SESSIONS = 8
KILLS = 6
MIN_RUNS = 300
DEADLINE = 150.0
UPTIME = (1.0, 2.0)  # seconds of chaos between a restart's checks and the next SIGKILL
RACE_DELAY = 0.08  # a stop is sent uniform(0, RACE_DELAY) s after its run began: about a run's length

pytestmark = pytest.mark.slow  # real server processes, SIGKILLs, long loops


@dataclass(kw_only=True)
class Chaos:
    rng: random.Random
    created: dict[str, dict[str, str]] = field(default_factory=dict)  # sid -> runId -> command
    stops: list[tuple[str, str, str, str]] = field(default_factory=list)  # sid, runId, command, status
    counts: Counter[str] = field(default_factory=Counter)

    async def drive(self, http: httpx.AsyncClient, sid: str) -> None:
        """Start / resume / retry a run, then let it complete or race an interrupt or abort against its
        completion; forever (until the server is killed under it)."""
        rng = self.rng
        while True:
            status = (await http.get(path(sid, "status"))).json()
            if status["isExecuting"]:
                command, body = rng.choice(["interrupt", "abort"]), {"reason": "chaos"}
            elif status["status"] == "interrupted" and rng.random() < 0.7:
                command, body = "resume", {"options": {"mode": "continue"}}
            elif status["status"] == "failed" and rng.random() < 0.7:
                command = "retry"
                body = {"options": {"mode": rng.choice(["from_checkpoint", "from_start"])}}
            else:
                command, body = "start", {"agentType": "quick", "input": {"message": "go"}}
            response = await http.post(path(sid, command), json=body)
            assert response.status_code in (202, 409), (command, response.text)
            if response.status_code == 409:
                continue
            answer = response.json()
            if command in ("interrupt", "abort"):
                self.stops.append((sid, answer["runId"], command, answer["status"]))
                continue
            self.created.setdefault(sid, {})[answer["runId"]] = command
            ending = rng.choice(["complete", "interrupt", "abort"])
            if ending == "complete":
                await wait_status(http, sid, lambda s: not s["isExecuting"], timeout=20)
                continue
            await trio.sleep(rng.uniform(0, RACE_DELAY))  # a random moment of the run, to race its end
            stop = await http.post(path(sid, ending), json={"reason": f"chaos {ending}"})
            assert stop.status_code in (202, 409), (ending, stop.text)
            if stop.status_code == 202:
                self.stops.append((sid, stop.json()["runId"], ending, stop.json()["status"]))
            else:
                self.counts["stops_too_late"] += 1  # the run had already ended on its own

    async def verify(self, http: httpx.AsyncClient, sids: list[str]) -> dict[str, list[RunSpan]]:
        spans_by_sid: dict[str, list[RunSpan]] = {}
        for sid in sids:
            _status, _chunks, spans = await settled_history(http, sid)
            spans_by_sid[sid] = spans
            by_run = {span.run_id: span for span in spans}
            missing = set(self.created.get(sid, {})) - set(by_run)
            assert not missing, f"{sid!r}: runs answered 202 but absent from history: {missing}"
        for sid, run_id, command, answered in self.stops:
            terminal = {s.run_id: s for s in spans_by_sid[sid]}[run_id].terminal
            assert terminal is not None and TERMINAL_STATUS[terminal["type"]] == answered, (
                f"{sid!r}: {command} of {run_id} answered {answered}, history ends it with {terminal}"
            )
        return spans_by_sid


async def _drive_until_killed(chaos: Chaos, http: httpx.AsyncClient, sid: str) -> None:
    try:
        await chaos.drive(http, sid)
    except httpx.TransportError:
        chaos.counts["commands_cut_by_kill"] += 1


async def test_every_run_ends_with_exactly_one_terminal_chunk_through_races_and_sigkill(tmp_path: Path):
    chaos = Chaos(rng=random.Random(20261124))
    sids = [f"chaos-{n}" for n in range(SESSIONS)]
    served = Served(data_dir=tmp_path / "data", log_path=tmp_path / "hypercorn.log", profile="plain")
    spans_by_sid: dict[str, list[RunSpan]] = {}
    kills = 0
    try:
        with trio.fail_after(DEADLINE):
            while True:  # at least KILLS kills and MIN_RUNS runs; a slow machine gets more lives
                await trio.to_thread.run_sync(served.start)
                async with httpx.AsyncClient(base_url=served.base_url, timeout=20.0) as http:
                    spans_by_sid = await chaos.verify(http, sids)
                    runs = sum(len(spans) for spans in spans_by_sid.values())
                    if kills >= KILLS and runs >= MIN_RUNS:
                        break
                    async with trio.open_nursery() as nursery:
                        for sid in sids:
                            nursery.start_soon(_drive_until_killed, chaos, http, sid)
                        await trio.sleep(chaos.rng.uniform(*UPTIME))
                        await trio.to_thread.run_sync(served.kill)
                        kills += 1
                        nursery.cancel_scope.cancel()
    finally:
        served.kill()
    ends: Counter[str] = Counter()
    for spans in spans_by_sid.values():
        for span in spans:
            assert span.terminal is not None
            reason = span.terminal.get("reason") or span.terminal.get("error", {}).get("code") or ""
            ends[f"{span.terminal['type']} {reason}".strip()] += 1
    runs = sum(ends.values())
    assert runs >= MIN_RUNS, (runs, ends)
    for end in (
        "run_completed",
        "run_interrupted chaos interrupt",
        "run_failed aborted",
        "run_interrupted crash",
    ):
        assert ends[end] >= 1, ends
    answered = Counter(status for _sid, _run, _command, status in chaos.stops)
    assert answered["interrupted"] >= 1 and answered["failed"] >= 1, answered
