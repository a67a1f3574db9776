"""The crash soak of ``bench/soak_crash.py``, shorter: a real server SIGKILLed at random moments while
WebSocket clients follow streaming sessions; after every restart nothing a client saw is lost, no seq
repeats, every run has one end, every file passes ``integrity_check``, and every session completes."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bench.soak_crash import SoakConfig, soak

KILLS = 5
SESSIONS = 5

pytestmark = pytest.mark.slow  # real server processes, SIGKILLs, long loops


async def test_sigkill_soak_loses_nothing_and_every_session_completes(tmp_path: Path):
    config = SoakConfig(kills=KILLS, sessions=SESSIONS, seed=20261124, min_uptime=0.3, max_uptime=1.2)
    with trio.fail_after(60):
        counts = await soak(tmp_path, config)
    assert counts["kills"] == KILLS and counts["server_starts"] == KILLS + 1
    assert counts["sessions_completed"] == SESSIONS
    assert counts["chunks_received"] > 0 and counts["chunks_verified"] >= counts["chunks_received"]
    assert counts["runs_interrupted_by_crash"] >= 1, counts
    assert counts["resumed_runs"] >= counts["runs_interrupted_by_crash"], counts
    assert counts["integrity_checks"] >= (KILLS + 1) * SESSIONS
