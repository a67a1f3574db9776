"""A real process is killed with SIGKILL mid-run; the session must come back readable and resumable."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import trio

from adapters import ScriptedAdapter
from helix.chunks import TERMINAL_TYPES
from helix.runtime import AgentRuntime
from stores import SessionStore, file_for_name

from .support import make_registry, tool_loop_script

CHILD = Path(__file__).with_name("crash_child.py")
ITERATIONS = 20


def run_child_until_killed(data_dir: Path, session_id: str, message: str, kill_after: int) -> list[dict]:
    """Start the child, read ``kill_after`` chunk lines, SIGKILL it; return the chunks it had received."""
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir), session_id, message],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    received: list[dict] = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("chunk "):
                received.append(json.loads(line[len("chunk ") :]))
                if len(received) >= kill_after:
                    break
            elif line.startswith("finished"):
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return received


async def soak(data_dir: Path, iterations: int, seed: int) -> dict[str, int]:
    """Kill a running child ``iterations`` times at random moments; after each kill, check recovery and
    resume the session to completion. Returns counts. Raises AssertionError on the first violation."""
    rng = random.Random(seed)
    script = tool_loop_script(6)
    counts = {"kills": 0, "recovered": 0, "finished_before_kill": 0, "chunks_checked": 0}
    for iteration in range(iterations):
        kill_after = rng.randint(1, 60)
        # A session per kill: the scripted model counts assistant turns, so a finished conversation would
        # only replay its last step.
        session = f"crashy-{iteration}"
        received = await trio.to_thread.run_sync(run_child_until_killed, data_dir, session, "go", kill_after)
        assert received, "the child printed no chunk before it was killed"
        counts["kills"] += 1
        dead_run = received[0]["runId"]
        runtime = AgentRuntime(
            llm_adapter=lambda env, ctx: ScriptedAdapter(script), agents=make_registry(), data_dir=data_dir
        )
        async with runtime:
            status = await runtime.status(session)
            page = await runtime.history(session)
            history = [c.as_dict() for c in page.chunks]
            while page.has_more:
                page = await runtime.history(session, from_seq=page.next_seq)
                history += [c.as_dict() for c in page.chunks]
            by_seq = {c["seq"]: c for c in history}
            # Every chunk a listener saw is in history, byte for byte; no seq repeats or skips.
            assert [c["seq"] for c in history] == list(range(1, len(history) + 1))
            for chunk in received:
                assert by_seq[chunk["seq"]] == chunk
            counts["chunks_checked"] += len(received)
            dead_chunks = [c for c in history if c["runId"] == dead_run]
            terminals = [c for c in dead_chunks if c["type"] in TERMINAL_TYPES]
            if terminals and terminals[0]["type"] == "run_completed":
                # The kill landed after the run had finished: nothing to recover.
                assert len(terminals) == 1
                counts["finished_before_kill"] += 1
            else:
                assert status.status == "interrupted" and status.can_resume
                assert terminals == [dead_chunks[-1]] and terminals[0]["reason"] == "crash"
                resumed = await runtime.get_handle(session).resume()
                assert (await resumed.result()).status == "completed"
                counts["recovered"] += 1
        with SessionStore.open(file_for_name(data_dir, session)) as store:
            assert store.integrity_check() == "ok"
    return counts


async def test_sigkill_mid_run_leaves_the_session_interrupted_by_crash_and_resumable(tmp_path):
    counts = await soak(tmp_path / "data", ITERATIONS, seed=20261124)
    assert counts["kills"] == ITERATIONS
    assert counts["recovered"] >= ITERATIONS // 2, counts
