"""The session's chunk stream: an append-only log numbered by ``seq``.

``seq`` starts at 1 and is consecutive across every run of the session. Each chunk is stored as the exact
JSON text clients receive (``{"seq", "runId", "type", "ts", ...}``), so the WebSocket, SSE and history
answers are byte-identical.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

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


class StoredChunk(NamedTuple):
    """A committed chunk: its ``seq``, run, type and the exact JSON text clients receive.

    A named tuple rather than a dataclass: it is made once per chunk (and again wherever a chunk is read
    back), and :meth:`fields` gives the plain tuple the live feeds keep, which the garbage collector
    stops tracking (see :mod:`helix.feed`)."""

    seq: int
    run_id: str
    type: str
    json: str

    def as_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = codec.loads(self.json)
        return value

    def fields(self) -> tuple[int, str, str, str]:
        """The chunk as a plain tuple (``StoredChunk._make`` turns it back)."""
        return (self.seq, self.run_id, self.type, self.json)


class ChunkLog:
    def __init__(self, db: sqlite3.Connection, writes: sqlite3.Cursor) -> None:
        self._db = db
        self._writes = writes
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
            stored.append(StoredChunk(seq, draft.run_id, draft.type, body))
            seq += 1
        if not rows:
            return stored
        with atomically(self._writes):
            self._writes.executemany(
                "INSERT INTO chunks(seq, run_id, type, ts, body) VALUES (?, ?, ?, ?, ?)", rows
            )
        self._next_seq = seq
        return stored

    def read(self, from_seq: int = 1, limit: int = 1000) -> list[StoredChunk]:
        """Up to ``limit`` chunks with ``seq >= from_seq``, in order."""
        return [
            StoredChunk._make(row)
            for row in self._db.execute(
                "SELECT seq, run_id, type, body FROM chunks WHERE seq >= ? ORDER BY seq LIMIT ?",
                (max(from_seq, 1), limit),
            )
        ]

    def for_run(self, run_id: str) -> list[StoredChunk]:
        return [
            StoredChunk._make(row)
            for row in self._db.execute(
                "SELECT seq, run_id, type, body FROM chunks WHERE run_id = ? ORDER BY seq", (run_id,)
            )
        ]
