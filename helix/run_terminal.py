"""A run's end: its terminal status and its one terminal chunk, written in one transaction."""

from __future__ import annotations

from typing import Any

from stores import SessionStore, StoredChunk

from . import chunks
from .status import RunStatus


class RunTerminal:
    """Writes the end of one run exactly once.

    Completion, interrupt, abort and a failure can race; each writer calls one of these methods inside a
    gate write, and only the first to run writes anything. The methods run inside the commit transaction,
    so the flag flips together with the rows it guards; :meth:`rolled_back` undoes it if that commit fails.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.written = False
        self.status: RunStatus | None = None

    def completed(self, store: SessionStore, output: Any) -> list[StoredChunk]:
        if self._claim(RunStatus.COMPLETED):
            store.runs.update(self.run_id, status=RunStatus.COMPLETED, output=output, resumable=True)
            return store.chunks.append([chunks.draft(self.run_id, chunks.RUN_COMPLETED, output=output)])
        return []

    def interrupted(self, store: SessionStore, reason: str) -> list[StoredChunk]:
        if self._claim(RunStatus.INTERRUPTED):
            store.runs.update(self.run_id, status=RunStatus.INTERRUPTED, reason=reason, resumable=True)
            return store.chunks.append([chunks.draft(self.run_id, chunks.RUN_INTERRUPTED, reason=reason)])
        return []

    def failed(
        self, store: SessionStore, *, code: str, message: str, blocked_reason: str | None = None
    ) -> list[StoredChunk]:
        if self._claim(RunStatus.FAILED):
            error = {"code": code, "message": message}
            store.runs.update(
                self.run_id,
                status=RunStatus.FAILED,
                error=error,
                reason=code,
                resumable=blocked_reason is None,
                resume_blocked_reason=blocked_reason,
            )
            return store.chunks.append([chunks.draft(self.run_id, chunks.RUN_FAILED, error=error)])
        return []

    def rolled_back(self) -> None:
        """The transaction that wrote the end did not commit: the run has no end yet."""
        self.written = False
        self.status = None

    def _claim(self, status: RunStatus) -> bool:
        if self.written:
            return False
        self.written = True
        self.status = status
        return True
