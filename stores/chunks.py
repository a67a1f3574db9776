"""The session's chunk stream: an append-only log numbered by ``seq``.

``seq`` starts at 1 and is consecutive across every run of the session. Each chunk is stored as the exact
JSON text clients receive (``{"seq", "runId", "type", "ts", ...}``), so the WebSocket, SSE and history
answers are byte-identical.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import codec
from .atomic import atomically

# The store sets these; a payload that also set one would make the chunk lie about its own seq or run.
RESERVED_FIELDS = frozenset({"seq", "runId", "type", "ts"})


@dataclass(frozen=True, kw_only=True)
class ChunkDraft:
    """A chunk before it has a ``seq``: its run, type, emit time (epoch ms) and payload fields."""

    run_id: str
    type: str
    ts: float
    payload: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class StoredChunk:
    seq: int
    run_id: str
    type: str
    json: str

    def as_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = codec.loads(self.json)
        return value


class ChunkLog:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._next_seq = 1

    def load_next_seq(self) -> None:
        """Re-read the next ``seq`` from the file (on open, and after a rolled-back transaction)."""
        row = self._db.execute("SELECT max(seq) FROM chunks").fetchone()
        self._next_seq = (row[0] or 0) + 1

    @property
    def last_seq(self) -> int:
        """The seq of the last appended chunk (0 when there is none)."""
        return self._next_seq - 1

    def append(self, drafts: Iterable[ChunkDraft]) -> list[StoredChunk]:
        """Number and store ``drafts`` in order, all in one commit: the caller's transaction if one is
        open, else one of their own. Stores none of them and raises ``ValueError`` if a payload sets one of
        the fields the store owns (``seq``, ``runId``, ``type``, ``ts``) or holds NaN/Infinity, ``TypeError``
        if it holds a value JSON cannot encode."""
        stored: list[StoredChunk] = []
        rows = []
        seq = self._next_seq
        for draft in drafts:
            clash = RESERVED_FIELDS.intersection(draft.payload)
            if clash:
                raise ValueError(f"chunk payload may not set {sorted(clash)}; the store sets them")
            body = codec.dumps(
                {"seq": seq, "runId": draft.run_id, "type": draft.type, "ts": draft.ts, **draft.payload}
            )
            rows.append((seq, draft.run_id, draft.type, draft.ts, body))
            stored.append(StoredChunk(seq=seq, run_id=draft.run_id, type=draft.type, json=body))
            seq += 1
        if not rows:
            return stored
        with atomically(self._db):
            self._db.executemany(
                "INSERT INTO chunks(seq, run_id, type, ts, body) VALUES (?, ?, ?, ?, ?)", rows
            )
        self._next_seq = seq
        return stored

    def read(self, from_seq: int = 1, limit: int = 1000) -> list[StoredChunk]:
        """Up to ``limit`` chunks with ``seq >= from_seq``, in order."""
        return [
            StoredChunk(seq=row[0], run_id=row[1], type=row[2], json=row[3])
            for row in self._db.execute(
                "SELECT seq, run_id, type, body FROM chunks WHERE seq >= ? ORDER BY seq LIMIT ?",
                (max(from_seq, 1), limit),
            )
        ]

    def for_run(self, run_id: str) -> list[StoredChunk]:
        return [
            StoredChunk(seq=row[0], run_id=row[1], type=row[2], json=row[3])
            for row in self._db.execute(
                "SELECT seq, run_id, type, body FROM chunks WHERE run_id = ? ORDER BY seq", (run_id,)
            )
        ]
