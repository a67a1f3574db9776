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


async def test_sigkill_mid_run_leaves_the_session_interrupted_by_crash_and_resumable(tmp_path):
    rng = random.Random(20261124)
    data_dir = tmp_path / "data"
    script = tool_loop_script(6)
    seen_runs: set[str] = set()
    for iteration in range(ITERATIONS):
        kill_after = rng.randint(1, 60)
        received = await trio.to_thread.run_sync(
            run_child_until_killed, data_dir, "crashy", f"attempt {iteration}", kill_after
        )
        assert received, "the child printed no chunk before it was killed"
        dead_run = received[0]["runId"]
        runtime = AgentRuntime(
            llm_adapter=lambda env, ctx: ScriptedAdapter(script), agents=make_registry(), data_dir=data_dir
        )
        async with runtime:
            status = await runtime.status("crashy")
            history = []
            page = await runtime.history("crashy")
            history += [c.as_dict() for c in page.chunks]
            while page.has_more:
                page = await runtime.history("crashy", from_seq=page.next_seq)
                history += [c.as_dict() for c in page.chunks]
            by_seq = {c["seq"]: c for c in history}
            # Every chunk a listener saw is in history, byte for byte; no seq repeats or skips.
            assert [c["seq"] for c in history] == list(range(1, len(history) + 1))
            for chunk in received:
                assert by_seq[chunk["seq"]] == chunk
            dead_chunks = [c for c in history if c["runId"] == dead_run]
            terminals = [
                c for c in dead_chunks if c["type"] in {"run_completed", "run_failed", "run_interrupted"}
            ]
            if terminals and terminals[0]["type"] == "run_completed":
                # The kill landed after the run had finished: nothing to recover.
                assert len(terminals) == 1
            else:
                assert status.status == "interrupted" and status.can_resume
                assert terminals == [dead_chunks[-1]] and terminals[0]["reason"] == "crash"
                assert (await runtime.get_handle("crashy").resume()).run_id not in seen_runs
                await runtime.wait_idle("crashy")
                assert (await runtime.status("crashy")).status == "completed"
            seen_runs.add(dead_run)
        with SessionStore.open(file_for_name(data_dir, "crashy")) as store:
            assert store.integrity_check() == "ok"
