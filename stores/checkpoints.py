"""Checkpoints and the states they point to.

A checkpoint records a head message and a state, never the conversation itself: the head names a path in
the message tree. States are stored once per distinct value (keyed by a hash of their canonical JSON), so
a step that does not change the state writes no state at all.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from . import codec


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    id: str
    run_id: str
    step: int
    parent_id: str | None
    head_message_id: int | None
    state_id: int | None
    status: str
    created_at: float


def new_checkpoint_id() -> str:
    """``cpv1-`` followed by 24 random hex digits."""
    return f"cpv1-{secrets.token_hex(12)}"


_COLUMNS = "id, run_id, step, parent_id, head_message_id, state_id, status, created_at"


def _row(row: tuple[Any, ...]) -> Checkpoint:
    return Checkpoint(
        id=row[0],
        run_id=row[1],
        step=row[2],
        parent_id=row[3],
        head_message_id=row[4],
        state_id=row[5],
        status=row[6],
        created_at=row[7],
    )


class CheckpointLog:
    def __init__(self, db: sqlite3.Connection, writes: sqlite3.Cursor) -> None:
        self._db = db
        self._writes = writes

    # -- states ----------------------------------------------------------------------------------

    def put_state(self, state: Any) -> int:
        """Store ``state`` (any JSON value) once; returns its id, the existing one if already stored."""
        body = codec.dumps(state)
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        row = self._db.execute("SELECT id FROM states WHERE hash = ?", (digest,)).fetchone()
        if row is not None:
            return int(row[0])
        cursor = self._writes.execute("INSERT INTO states(hash, body) VALUES (?, ?)", (digest, body))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def get_state(self, state_id: int | None) -> Any:
        """The state stored under ``state_id`` (``None`` for ``None``)."""
        if state_id is None:
            return None
        row = self._db.execute("SELECT body FROM states WHERE id = ?", (state_id,)).fetchone()
        return None if row is None else codec.loads(row[0])

    # -- checkpoints -----------------------------------------------------------------------------

    def add(
        self,
        *,
        run_id: str,
        step: int,
        parent_id: str | None,
        head_message_id: int | None,
        state_id: int | None,
        status: str,
        checkpoint_id: str | None = None,
    ) -> Checkpoint:
        checkpoint = Checkpoint(
            id=checkpoint_id or new_checkpoint_id(),
            run_id=run_id,
            step=step,
            parent_id=parent_id,
            head_message_id=head_message_id,
            state_id=state_id,
            status=status,
            created_at=time.time(),
        )
        self._writes.execute(
            f"INSERT INTO checkpoints({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                checkpoint.id,
                checkpoint.run_id,
                checkpoint.step,
                checkpoint.parent_id,
                checkpoint.head_message_id,
                checkpoint.state_id,
                checkpoint.status,
                checkpoint.created_at,
            ),
        )
        return checkpoint

    def get(self, checkpoint_id: str) -> Checkpoint | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM checkpoints WHERE id = ?", (checkpoint_id,)
        ).fetchone()
        return None if row is None else _row(row)

    def list(self, run_id: str | None = None) -> list[Checkpoint]:
        """Every checkpoint (or a run's), oldest first."""
        if run_id is None:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM checkpoints ORDER BY n")
        else:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE run_id = ? ORDER BY n", (run_id,)
            )
        return [_row(row) for row in rows]

    def latest(self, run_id: str | None = None) -> Checkpoint | None:
        if run_id is None:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM checkpoints ORDER BY n DESC LIMIT 1").fetchone()
        else:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM checkpoints WHERE run_id = ? ORDER BY n DESC LIMIT 1", (run_id,)
            ).fetchone()
        return None if row is None else _row(row)

    def count(self, run_id: str) -> int:
        row = self._db.execute("SELECT count(*) FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
        return int(row[0])
