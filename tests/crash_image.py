"""What a crash right now would leave of a session file: a copy of the file and its WAL, opened fresh.

A live store holds SQLite's lock for as long as it is open (exclusive locking mode), so no second
connection can look at its file. A copy of the file and its ``-wal`` is exactly what the next opener
would recover after a ``kill -9``: committed transactions are in it, uncommitted ones are not.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any


def query_after_crash(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with tempfile.TemporaryDirectory(prefix="helix-crash-image-") as scratch:
        copy = Path(scratch) / path.name
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        db = sqlite3.connect(copy)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()
