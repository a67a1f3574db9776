"""Invariants the reliability tests and ``bench/soak_crash.py`` check on a session's history and status.

A history is valid when its seqs are 1..n with no gap or repeat, runs never interleave (a run's chunks are
one contiguous block), each run starts with ``run_started`` / ``run_resumed`` and ends with exactly one
terminal chunk with nothing of that run after it, and ``/status`` names the run of the last terminal
chunk with the matching status. Violations raise :class:`AssertionError` with the session and the seqs.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.server.support import history, path

TERMINAL_STATUS = {"run_completed": "completed", "run_failed": "failed", "run_interrupted": "interrupted"}
FIRST_TYPES = {"run_started", "run_resumed"}


@dataclass(frozen=True, kw_only=True)
class RunSpan:
    run_id: str
    first: dict[str, Any]
    terminal: dict[str, Any] | None
    chunks: int


def check_runs(sid: str, chunks: list[dict[str, Any]], *, allow_open_last: bool = False) -> list[RunSpan]:
    """The runs of a history, checked (see the module docstring). ``allow_open_last``: the last run may
    still be executing (no terminal chunk yet)."""
    seqs = [c["seq"] for c in chunks]
    assert seqs == list(range(1, len(chunks) + 1)), f"{sid!r}: seqs are not 1..n: {_gaps(seqs)}"
    spans: list[RunSpan] = []
    finished: set[str] = set()
    current: dict[str, Any] | None = None
    count = 0
    terminal: dict[str, Any] | None = None
    for chunk in chunks:
        run_id = chunk["runId"]
        if current is None or run_id != current["runId"]:
            if current is not None:
                assert terminal is not None, (
                    f"{sid!r}: run {current['runId']} has no terminal chunk before seq {chunk['seq']} "
                    f"of run {run_id} (two runs at once, or a lost end)"
                )
                spans.append(RunSpan(run_id=current["runId"], first=current, terminal=terminal, chunks=count))
            assert run_id not in finished, f"{sid!r}: run {run_id} has chunks again at seq {chunk['seq']}"
            assert chunk["type"] in FIRST_TYPES, f"{sid!r}: run {run_id} begins with {chunk['type']}"
            current, count, terminal = chunk, 0, None
            finished.add(run_id)
        elif terminal is not None:
            raise AssertionError(
                f"{sid!r}: run {run_id} has {chunk['type']} at seq {chunk['seq']} after its terminal "
                f"{terminal['type']} at seq {terminal['seq']}"
            )
        count += 1
        if chunk["type"] in TERMINAL_STATUS:
            terminal = chunk
    if current is not None:
        assert terminal is not None or allow_open_last, f"{sid!r}: run {current['runId']} has no terminal"
        spans.append(RunSpan(run_id=current["runId"], first=current, terminal=terminal, chunks=count))
    return spans


def check_status_agrees(sid: str, status: dict[str, Any], spans: list[RunSpan]) -> None:
    """A settled session: not executing, and ``/status`` is the last run's terminal chunk."""
    assert not status["isExecuting"], f"{sid!r}: still executing: {status}"
    if not spans:
        assert status["status"] == "idle" and "runId" not in status, f"{sid!r}: {status}"
        return
    last = spans[-1]
    assert last.terminal is not None, f"{sid!r}: the last run {last.run_id} has no terminal chunk"
    assert status.get("runId") == last.run_id, (
        f"{sid!r}: status names {status.get('runId')}, not {last.run_id}"
    )
    expected = TERMINAL_STATUS[last.terminal["type"]]
    assert status["status"] == expected, f"{sid!r}: status {status['status']} but history ends {expected}"


async def settled_history(
    http: httpx.AsyncClient, sid: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[RunSpan]]:
    """``/status`` (first: it lets crash recovery run), then ``/history``, both checked."""
    response = await http.get(path(sid, "status"))
    assert response.status_code == 200, response.text
    status = response.json()
    chunks = await history(http, sid)
    spans = check_runs(sid, chunks)
    check_status_agrees(sid, status, spans)
    return status, chunks, spans


def integrity_check(file: Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file opened read-only (run it while no server is alive)."""
    connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return "; ".join(str(row[0]) for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def integrity_check_all(data_dir: Path) -> int:
    """Check every SQLite file under ``data_dir``; returns how many passed (raises on the first bad one)."""
    checked = 0
    for file in sorted(data_dir.rglob("*.sqlite3")):
        result = integrity_check(file)
        assert result == "ok", f"{file}: integrity_check says {result}"
        checked += 1
    return checked


def _gaps(seqs: list[int]) -> str:
    repeated = [seq for seq, n in Counter(seqs).items() if n > 1]
    return f"first {seqs[:5]}..., repeated {repeated[:10]}, count {len(seqs)}, max {max(seqs, default=0)}"
