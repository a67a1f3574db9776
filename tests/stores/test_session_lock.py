"""One writer per session file: a second opener, in this process or another, gets SessionLockedError."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores import ChunkDraft, SessionLockedError, SessionStore

REPO_ROOT = Path(__file__).resolve().parents[2]

HOLD = """
import sys
from stores import ChunkDraft, SessionStore
store = SessionStore.open(sys.argv[1])
store.chunks.append([ChunkDraft(run_id="holder", type="custom", ts=1.0, payload={})])
print("opened", flush=True)
sys.stdin.read()  # hold the file until killed
"""

TRY_OPEN = """
import sys
from stores import SessionLockedError, SessionStore
try:
    SessionStore.open(sys.argv[1]).close()
except SessionLockedError as exc:
    print("locked", exc)
else:
    print("opened")
"""

SWITCH_OUT_OF_WAL = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0)
try:
    print(db.execute("PRAGMA journal_mode=DELETE").fetchone()[0])
except sqlite3.OperationalError as exc:
    print("refused:", exc)
"""


def python(script: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], env=env, text=True, stdin=stdin, stdout=subprocess.PIPE
    )


def run(script: str, *args: str) -> str:
    out, _ = python(script, *args).communicate(timeout=60)
    return str(out).strip()


@pytest.fixture
def holder(store_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that has the session file open (and one chunk committed)."""
    process = python(HOLD, str(store_path), stdin=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "opened"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


def test_second_open_in_the_same_process_is_refused_and_the_first_keeps_working(store_path: Path) -> None:
    with SessionStore.open(store_path) as first:
        with pytest.raises(SessionLockedError) as refused:
            SessionStore.open(store_path)
        assert refused.value.path == store_path
        assert str(store_path) in str(refused.value)
        assert first.chunks.append([ChunkDraft(run_id="r", type="custom", ts=1.0, payload={})])[0].seq == 1
    with SessionStore.open(store_path) as reopened:
        assert reopened.chunks.last_seq == 1


@pytest.mark.slow
def test_refused_second_open_leaves_the_owners_sqlite_locks_in_place(store_path: Path) -> None:
    # Closing any descriptor of a file drops all of this process's POSIX locks on it, SQLite's included.
    with SessionStore.open(store_path) as owner:
        owner.set_name("s1")
        with pytest.raises(SessionLockedError):
            SessionStore.open(store_path)
        assert run(SWITCH_OUT_OF_WAL, str(store_path)).startswith("refused: database is locked")
        assert owner.name == "s1"


@pytest.mark.slow
def test_another_process_cannot_open_a_file_this_process_holds(store_path: Path) -> None:
    with SessionStore.open(store_path) as store:
        answer = run(TRY_OPEN, str(store_path))
        assert answer.startswith("locked ")
        assert str(store_path) in answer
        assert store.chunks.append([ChunkDraft(run_id="r", type="custom", ts=1.0, payload={})])[0].seq == 1
    assert run(TRY_OPEN, str(store_path)) == "opened"


@pytest.mark.slow
def test_file_held_by_another_process_is_locked_until_that_process_is_killed(
    store_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(SessionLockedError, match=re.escape(str(store_path))):
        SessionStore.open(store_path)

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)

    with SessionStore.open(store_path) as store:  # no stale lock after kill -9
        assert [chunk.run_id for chunk in store.chunks.read(1)] == ["holder"]  # its commit survived
