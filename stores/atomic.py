"""One write that takes several statements commits whole or not at all.

The parts of a :class:`~stores.session_store.SessionStore` make each write of more than one statement
(a usage entry and its rollup row, the rows of a chunk batch, a chain of messages) through
:func:`atomically`: inside the store's ``transaction()`` the statements join it; called on their own they
get a transaction of their own, so a crash or an error between two statements never leaves half of them
committed.

Writes go through one cursor the store keeps for its connection's life, not ``Connection.execute``:
that creates a cursor per statement, and Python's ``sqlite3`` keeps a weak reference to every cursor a
connection made until it prunes them every 200, so a store committing one chunk at a time piled up to
200 dead weak references per session for the garbage collector to walk (a third of the young objects in
the paced benchmark). Reads still take a cursor each: one reused cursor would be reset under a caller still
iterating it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from types import TracebackType


class _Atomically:
    # A class, not @contextlib.contextmanager: this runs for nearly every write, and a generator-based
    # context manager costs several times as much to enter and leave.
    __slots__ = ("_own", "_writes")

    def __init__(self, writes: sqlite3.Cursor) -> None:
        self._writes = writes
        self._own = False

    def __enter__(self) -> None:
        if not self._writes.connection.in_transaction:
            self._writes.execute("BEGIN IMMEDIATE")
            self._own = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._own:
            end_transaction(self._writes, failed=exc_type is not None)


def end_transaction(
    writes: sqlite3.Cursor, *, failed: bool, after_rollback: Callable[[], None] | None = None
) -> None:
    """Commit the open transaction, or roll it back if ``failed`` or if the COMMIT raises (then
    re-raised); ``after_rollback`` runs after a rollback."""
    if not failed:
        try:
            writes.execute("COMMIT")
            return
        except BaseException:
            _roll_back(writes, after_rollback)
            raise
    _roll_back(writes, after_rollback)


def _roll_back(writes: sqlite3.Cursor, after_rollback: Callable[[], None] | None) -> None:
    try:
        # SQLite has already rolled back by itself after some errors (a full disk, an I/O error); a
        # second ROLLBACK would raise and hide the original error.
        if writes.connection.in_transaction:
            writes.execute("ROLLBACK")
    finally:
        if after_rollback is not None:
            after_rollback()


def atomically(writes: sqlite3.Cursor) -> _Atomically:
    """Join the open transaction, or run the block in a new one that commits at its end and rolls back
    if it raises. The connection must be in autocommit mode (``isolation_level=None``)."""
    return _Atomically(writes)
