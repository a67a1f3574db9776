"""Opening a session file: what a fresh file looks like, and clear errors for files we cannot use."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from stores import SCHEMA_VERSION, SchemaTooNewError, SessionStore, StoreFileError


def raw(path: Path, sql: str) -> object:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def test_new_file_is_created_in_wal_mode_at_the_current_schema_version(store_path: Path) -> None:
    with SessionStore.open(store_path) as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store.integrity_check() == "ok"
    assert raw(store_path, "PRAGMA journal_mode") == "wal"
    assert raw(store_path, "PRAGMA user_version") == SCHEMA_VERSION


def test_open_session_keeps_its_wal_index_in_memory_so_there_is_no_shm_file(store_path: Path) -> None:
    for _ in ("new file", "reopened file"):
        with SessionStore.open(store_path) as store:
            store.set_name("support/42")
            siblings = sorted(p.name for p in store_path.parent.iterdir())
            assert siblings == ["session.sqlite3", "session.sqlite3-wal"]
        assert sorted(p.name for p in store_path.parent.iterdir()) == ["session.sqlite3"]


def test_a_name_given_to_open_is_recorded_only_by_the_open_that_creates_the_file(store_path: Path) -> None:
    with SessionStore.open(store_path, name="support/42") as store:
        assert store.name == "support/42"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL for commits
    assert raw(store_path, "SELECT value FROM meta WHERE key = 'name'") == "support/42"
    with SessionStore.open(store_path, name="someone-else") as store:
        assert store.name == "support/42"


def test_reopening_makes_the_new_wals_first_write_itself_and_keeps_commits_at_normal(
    store_path: Path,
) -> None:
    # The last close folded the WAL in and removed it, so the one the reopen creates is new: its first
    # write (which would carry two fsyncs) is made by the open, not by the actor's first commit.
    with SessionStore.open(store_path, name="support/42") as store:
        store.set_alarm(5.0)
    wal = Path(f"{store_path}-wal")
    assert not wal.exists()
    for _ in range(2):
        before = time.time()
        with SessionStore.open(store_path, name="support/42") as store:
            assert wal.stat().st_size > 0
            assert before <= float(store.get_meta("opened_at") or 0) <= time.time()
            assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
            assert (store.name, store.get_alarm()) == ("support/42", 5.0)
        assert raw(store_path, "PRAGMA integrity_check") == "ok"


def test_name_and_alarm_survive_reopening(store_path: Path) -> None:
    with SessionStore.open(store_path) as store:
        store.set_name("support/42")
        store.set_alarm(1_700_000_000.25)
    with SessionStore.open(store_path) as store:
        assert store.name == "support/42"
        assert store.get_alarm() == 1_700_000_000.25
        store.set_alarm(None)
        assert store.get_alarm() is None


@pytest.mark.parametrize(
    "content",
    [
        random.Random(3).randbytes(8192),
        b"this is a text file, not a database\n" * 100,
        b"short",
    ],
    ids=["random-bytes", "text", "short-text"],
)
def test_file_that_is_not_sqlite_gives_store_file_error_naming_it_and_is_left_as_it_was(
    store_path: Path, content: bytes
) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(content)

    with pytest.raises(StoreFileError) as error:
        SessionStore.open(store_path)

    assert error.value.path == store_path
    assert str(store_path) in str(error.value)
    assert store_path.read_bytes() == content
    assert sorted(p.name for p in store_path.parent.iterdir()) == [store_path.name]
    with pytest.raises(StoreFileError):  # and the failed open left no lock behind
        SessionStore.open(store_path)


def test_file_from_a_newer_schema_gives_schema_too_new_error_naming_it_and_is_left_as_it_was(
    store_path: Path,
) -> None:
    with SessionStore.open(store_path) as store:
        store.set_name("from-the-future")
    db = sqlite3.connect(store_path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    before = store_path.read_bytes()

    with pytest.raises(SchemaTooNewError) as error:
        SessionStore.open(store_path)

    assert (error.value.path, error.value.found, error.value.supported) == (
        store_path,
        SCHEMA_VERSION + 1,
        SCHEMA_VERSION,
    )
    assert str(store_path) in str(error.value)
    assert store_path.read_bytes() == before
    assert raw(store_path, "PRAGMA journal_mode") == "delete"
    with pytest.raises(SchemaTooNewError):  # no lock left behind
        SessionStore.open(store_path)


def test_path_that_cannot_be_opened_as_a_file_gives_store_file_error_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "ab" / "session.sqlite3"
    directory.mkdir(parents=True)
    with pytest.raises(StoreFileError) as error:
        SessionStore.open(directory)
    assert error.value.path == directory
    assert str(directory) in str(error.value)
    assert list(directory.iterdir()) == []


def test_closing_twice_is_harmless_and_closed_says_so(store_path: Path) -> None:
    store = SessionStore.open(store_path)
    assert not store.closed
    store.close()
    store.close()
    assert store.closed
    SessionStore.open(store_path).close()
