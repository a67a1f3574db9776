"""One write that takes several statements commits whole or not at all.

The parts of a :class:`~stores.session_store.SessionStore` make each write of more than one statement
(a usage entry and its rollup row, the rows of a chunk batch, a chain of messages) through
:func:`atomically`: inside the store's ``transaction()`` the statements join it; called on their own they
get a transaction of their own, so a crash or an error between two statements never leaves half of them
committed."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def atomically(db: sqlite3.Connection) -> Iterator[None]:
    """Join the open transaction, or run the block in a new one that commits at its end and rolls back
    if it raises. The connection must be in autocommit mode (``isolation_level=None``)."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        # SQLite has already rolled back by itself after some errors (a full disk, an I/O error); a
        # second ROLLBACK would raise and hide the original error.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
