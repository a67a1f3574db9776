"""Runs: one row per start, resume or retry, with its status, outcome and whether it can be resumed."""

from __future__ import annotations

import builtins
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from . import codec


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    id: str
    agent_type: str
    status: str
    created_at: float
    updated_at: float
    mode: str
    from_checkpoint_id: str | None = None
    start_head_id: int | None = None
    start_state_id: int | None = None
    first_seq: int | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    resumable: bool = True
    resume_blocked_reason: str | None = None
    metadata: dict[str, Any] | None = None


_COLUMNS = (
    "id, agent_type, status, created_at, updated_at, mode, from_checkpoint_id, start_head_id, start_state_id,"
    " output, error, reason,"
    " resumable, resume_blocked_reason, metadata, first_seq"
)
_UPDATABLE = {"status", "output", "error", "reason", "resumable", "resume_blocked_reason"}
_JSON_FIELDS = {"output", "error"}


def _row(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=row[0],
        agent_type=row[1],
        status=row[2],
        created_at=row[3],
        updated_at=row[4],
        mode=row[5],
        from_checkpoint_id=row[6],
        start_head_id=row[7],
        start_state_id=row[8],
        output=None if row[9] is None else codec.loads(row[9]),
        error=None if row[10] is None else codec.loads(row[10]),
        reason=row[11],
        resumable=bool(row[12]),
        resume_blocked_reason=row[13],
        metadata=None if row[14] is None else codec.loads(row[14]),
        first_seq=row[15],
    )


class RunTable:
    def __init__(self, db: sqlite3.Connection, writes: sqlite3.Cursor) -> None:
        self._db = db
        self._writes = writes

    def create(
        self,
        *,
        run_id: str,
        agent_type: str,
        status: str,
        mode: str,
        from_checkpoint_id: str | None = None,
        start_head_id: int | None = None,
        start_state_id: int | None = None,
        first_seq: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Record a new run. ``start_head_id``/``start_state_id`` are the conversation head and state it
        started from (what ``retry from_start`` restores); ``first_seq`` is the seq of its first chunk."""
        now = time.time()
        self._writes.execute(
            "INSERT INTO runs(id, agent_type, status, created_at, updated_at, mode, from_checkpoint_id,"
            " start_head_id, start_state_id, first_seq, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, agent_type, status, now, now, mode, from_checkpoint_id, start_head_id, start_state_id,
             first_seq, None if metadata is None else codec.dumps(metadata)),
        )
        return RunRecord(
            id=run_id, agent_type=agent_type, status=status, created_at=now, updated_at=now, mode=mode,
            from_checkpoint_id=from_checkpoint_id, start_head_id=start_head_id, start_state_id=start_state_id,
            first_seq=first_seq, metadata=metadata,
        )

    def update(self, run_id: str, **fields: Any) -> None:
        """Set any of ``status, output, error, reason, resumable, resume_blocked_reason``."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise TypeError(f"cannot update run fields {sorted(unknown)}")
        values = [codec.dumps(v) if k in _JSON_FIELDS and v is not None else v for k, v in fields.items()]
        assignments = "".join(f"{name} = ?, " for name in fields)
        self._writes.execute(
            f"UPDATE runs SET {assignments}updated_at = ? WHERE id = ?", (*values, time.time(), run_id)
        )

    def get(self, run_id: str) -> RunRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _row(row)

    def latest(self) -> RunRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY n DESC LIMIT 1").fetchone()
        return None if row is None else _row(row)

    def list(self) -> list[RunRecord]:
        return [_row(row) for row in self._db.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY n")]

    # ``builtins.list``: inside this class body, ``list`` is the method above.
    def with_status(self, status: str) -> builtins.list[RunRecord]:
        return [
            _row(row)
            for row in self._db.execute(f"SELECT {_COLUMNS} FROM runs WHERE status = ? ORDER BY n", (status,))
        ]
