"""One write that takes several statements commits whole or not at all.

The parts of a :class:`~stores.session_store.SessionStore` make each write of more than one statement
(a usage entry and its rollup row, the rows of a chunk batch, a chain of messages) through
:func:`atomically`: inside the store's ``transaction()`` the statements join it; called on their own they
get a transaction of their own, so a crash or an error between two statements never leaves half of them
committed."""

from __future__ import annotations

import sqlite3
from types import TracebackType


class _Atomically:
    # A class, not @contextlib.contextmanager: this runs for nearly every write, and a generator-based
    # context manager costs several times as much to enter and leave.
    __slots__ = ("_db", "_own")

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._own = False

    def __enter__(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._own = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._own:
            return
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise
        else:
            self._roll_back()

    def _roll_back(self) -> None:
        # SQLite has already rolled back by itself after some errors (a full disk, an I/O error); a
        # second ROLLBACK would raise and hide the original error.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def atomically(db: sqlite3.Connection) -> _Atomically:
    """Join the open transaction, or run the block in a new one that commits at its end and rolls back
    if it raises. The connection must be in autocommit mode (``isolation_level=None``)."""
    return _Atomically(db)
