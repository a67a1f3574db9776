"""Usage entries (one per LLM, tool or sub-agent call) and their rollup.

The rollup is one row per ``(kind, model)`` updated in the same transaction as the entry it counts, so it
always equals the sum of the entries and reading totals never scans them.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from .atomic import atomically

COUNTERS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "duration_ms")


@dataclass(frozen=True, kw_only=True)
class UsageEntry:
    kind: str  # "llm" | "tool" | "subagent"
    model: str | None = None
    name: str | None = None
    run_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    duration_ms: float = 0.0
    created_at: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class UsageTotals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    duration_ms: float = 0.0

    def plus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            calls=self.calls + other.calls,
            **{name: getattr(self, name) + getattr(other, name) for name in COUNTERS},
        )


@dataclass(frozen=True, kw_only=True)
class UsageRollup:
    total: UsageTotals
    by_kind: dict[str, UsageTotals]
    by_model: dict[str, UsageTotals]  # entries without a model are counted in no model


class UsageLedger:
    def __init__(self, db: sqlite3.Connection, writes: sqlite3.Cursor) -> None:
        self._db = db
        self._writes = writes

    def add(self, entry: UsageEntry) -> None:
        """Record ``entry`` and fold it into the rollup, in one commit (the caller's transaction if open)."""
        counts = tuple(getattr(entry, name) for name in COUNTERS)
        with atomically(self._writes):
            self._writes.execute(
                "INSERT INTO usage_entries(run_id, kind, model, name, input_tokens, output_tokens,"
                " cached_tokens, reasoning_tokens, duration_ms, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.run_id, entry.kind, entry.model, entry.name, *counts, entry.created_at),
            )
            self._writes.execute(
                "INSERT INTO usage_rollup(kind, model, calls, input_tokens, output_tokens, cached_tokens,"
                " reasoning_tokens, duration_ms) VALUES (?, ?, 1, ?, ?, ?, ?, ?)"
                " ON CONFLICT(kind, model) DO UPDATE SET calls = calls + 1,"
                " input_tokens = input_tokens + excluded.input_tokens,"
                " output_tokens = output_tokens + excluded.output_tokens,"
                " cached_tokens = cached_tokens + excluded.cached_tokens,"
                " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,"
                " duration_ms = duration_ms + excluded.duration_ms",
                (entry.kind, entry.model or "", *counts),
            )

    def entries(self, run_id: str | None = None) -> list[UsageEntry]:
        query = (
            "SELECT kind, model, name, run_id, input_tokens, output_tokens, cached_tokens, reasoning_tokens,"
            " duration_ms, created_at FROM usage_entries"
        )
        params: tuple[Any, ...] = ()
        if run_id is not None:
            query += " WHERE run_id = ?"
            params = (run_id,)
        return [
            UsageEntry(
                kind=r[0], model=r[1], name=r[2], run_id=r[3], input_tokens=r[4], output_tokens=r[5],
                cached_tokens=r[6], reasoning_tokens=r[7], duration_ms=r[8], created_at=r[9],
            )
            for r in self._db.execute(query + " ORDER BY id", params)
        ]

    def rollup(self) -> UsageRollup:
        total = UsageTotals()
        by_kind: dict[str, UsageTotals] = {}
        by_model: dict[str, UsageTotals] = {}
        for row in self._db.execute(
            "SELECT kind, model, calls, input_tokens, output_tokens, cached_tokens, reasoning_tokens,"
            " duration_ms FROM usage_rollup"
        ):
            totals = UsageTotals(calls=row[2], **dict(zip(COUNTERS, row[3:], strict=True)))
            total = total.plus(totals)
            by_kind[row[0]] = by_kind.get(row[0], UsageTotals()).plus(totals)
            if row[1]:
                by_model[row[1]] = by_model.get(row[1], UsageTotals()).plus(totals)
        return UsageRollup(total=total, by_kind=by_kind, by_model=by_model)
