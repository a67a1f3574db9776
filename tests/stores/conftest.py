from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stores import SessionStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "ab" / "session.sqlite3"


@pytest.fixture
def store(store_path: Path) -> Iterator[SessionStore]:
    with SessionStore.open(store_path) as opened:
        yield opened


@pytest.fixture
def commits(store: SessionStore) -> Iterator[list[str]]:
    """The COMMITs the ``store`` fixture's connection runs from here to the end of the test."""
    seen: list[str] = []
    store._db.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    yield seen
    store._db.set_trace_callback(None)
