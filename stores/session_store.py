"""One session's SQLite file: opening, ownership, transactions, and the parts it is made of.

A :class:`SessionStore` is the only writer of its file. Opening takes an exclusive ``flock`` on the file
(released on close or process death, so a ``kill -9`` never leaves a stale lock); a second opener, in this
process or another, gets :class:`SessionLockedError`. The file is in WAL mode with ``synchronous=NORMAL``:
a commit survives a process crash, which is the durability promise the runtime makes. SQLite's lock is
held for as long as the store is open (``locking_mode=EXCLUSIVE``), so no other connection can read a live
session's file: read it through the store, or after it is closed (a hibernated session).

All methods are synchronous and fast (WAL appends, no fsync per commit); the actor that owns the store
calls them from its own task. Writes made inside one ``with store.transaction():`` commit together.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .atomic import end_transaction
from .checkpoints import CheckpointLog
from .chunks import ChunkLog
from .errors import SchemaTooNewError, SessionLockedError, StoreFileError
from .messages import MessageTree
from .runs import RunTable
from .schema import MIGRATIONS, SCHEMA_VERSION
from .usage import UsageLedger

_ALARM_KEY = "alarm_at"
_NAME_KEY = "name"
_OPENED_KEY = "opened_at"


# The files this process holds open, by (device, inode). Ownership is per process in the kernel (flock
# between processes, and POSIX locks are per process), so this set is process-wide by nature; it starts
# empty and only open/close change it.
_HELD: set[tuple[int, int]] = set()
_HELD_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _fd_key(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


class SessionStore:
    """The per-session file. Parts: ``messages``, ``checkpoints`` (with states), ``chunks``, ``runs``,
    ``usage``; plus a small key/value ``meta`` table (session name, alarm, the current head, when the file was
    last reopened)."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._db = connection
        # Writes share one cursor (see stores.atomic); closed before the connection,
        # as a cursor holding a statement would keep the file open and locked past close().
        self._writes = writes = connection.cursor()
        self._lock_fd = lock_fd
        self._depth = 0
        self._key: tuple[int, int] = (-1, -1)
        self.messages = MessageTree(connection, writes)
        self.checkpoints = CheckpointLog(connection, writes)
        self.chunks = ChunkLog(connection, writes)
        self.runs = RunTable(connection, writes)
        self.usage = UsageLedger(connection, writes)

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, name: str | None = None) -> SessionStore:
        """Open (creating if needed) the file at ``path`` and take its ownership lock. A file this call
        creates records ``name`` (see :attr:`name`) as it is created.

        Raises :class:`SessionLockedError` if another writer holds it, :class:`StoreFileError` if it is not
        a SQLite database or cannot be opened at all, :class:`SchemaTooNewError` if a newer schema wrote it.
        A failed open leaves the file as it was and holds no lock.
        """
        path = Path(path)
        with _HELD_LOCK:
            # Checked before opening a descriptor: closing any descriptor of a file drops every POSIX lock
            # this process holds on it, so a refused second opener would silently strip the first one's
            # SQLite locks (and let another process switch the file out of WAL under it).
            if _file_key(path) in _HELD:
                raise SessionLockedError(path)
            try:
                fd = _open_creating_parents(path)
            except OSError as exc:
                raise StoreFileError(path, exc.strerror or str(exc)) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise SessionLockedError(path) from None
            try:
                key = _fd_key(fd)
                fresh = os.fstat(fd).st_size == 0
                # No WAL file: the one SQLite now creates is new, as a new file's is (see _write_first).
                reopened_without_wal = not fresh and not os.path.exists(f"{path}-wal")
                if fresh:
                    # A new session: lay down a file that already has the current schema, instead of running
                    # every migration on it (a third of a new session's cost).
                    os.write(fd, _empty_file_image())
                connection = _connect(path, fresh=fresh)
                try:
                    store = cls(path, connection, fd)
                    store.chunks.load_next_seq()
                    if fresh and name is not None:
                        store._write_first(lambda: store.set_meta(_NAME_KEY, name))
                    elif reopened_without_wal:
                        # A reopened file (its WAL was folded in and removed at the last close): record
                        # when, so the new WAL's first write is this one (SQLite skips a write that
                        # changes nothing), not the actor's first commit on the event loop.
                        store._write_first(lambda: store.set_meta(_OPENED_KEY, repr(time.time())))
                except BaseException:
                    connection.close()
                    raise
            except BaseException:
                os.close(fd)  # closing the descriptor releases the lock
                raise
            store._key = key
            _HELD.add(key)
        return store

    def close(self) -> None:
        """Close the file and release the lock. Every commit is already durable in the WAL; SQLite folds
        the WAL into the main file as the last connection closes. Closing twice is harmless."""
        if self._lock_fd < 0:
            return
        try:
            self._writes.close()
            self._db.close()
        finally:
            with _HELD_LOCK:
                os.close(self._lock_fd)
                self._lock_fd = -1
                _HELD.discard(self._key)

    @property
    def closed(self) -> bool:
        return self._lock_fd < 0

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions ----------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        """Group writes into one commit. Nested use joins the outer transaction. On an exception the
        whole transaction rolls back and the chunk sequence is restored to what the file holds."""
        return _Transaction(self)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._writes.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._writes.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def name(self) -> str | None:
        """The session (actor) name this file belongs to, recorded on first activation."""
        return self.get_meta(_NAME_KEY)

    def set_name(self, name: str) -> None:
        self.set_meta(_NAME_KEY, name)

    def _write_first(self, write: Callable[[], object]) -> None:
        """The first write into a new WAL (a new file's, or a reopened file's whose WAL the last close
        removed), made without the two fsyncs that come with it under ``synchronous=NORMAL`` (the new
        WAL's header, then its directory): 0.35-0.4 ms of waiting per new or reactivated session, which
        would otherwise fall on its first commit, on the event loop. Those syncs keep a WAL *restarted*
        over old frames from being misread after a power cut; a new WAL has no old frames, and both syncs
        still happen, in order, before SQLite first copies the WAL into the file (the checkpoint syncs
        the WAL first, and the directory with it). What a power cut can cost before then is what
        ``NORMAL`` already allows: the commits since the last checkpoint. A process crash loses
        nothing."""
        self._db.execute("PRAGMA synchronous=OFF")
        try:
            write()
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def get_alarm(self) -> float | None:
        """The pending alarm time (Unix epoch seconds), if any."""
        value = self.get_meta(_ALARM_KEY)
        return None if value is None else float(value)

    def set_alarm(self, at: float | None) -> None:
        """Set (or clear, with ``None``) the one alarm of this session."""
        self.set_meta(_ALARM_KEY, None if at is None else repr(float(at)))

    def fold_wal(self) -> None:
        """Copy every committed page from the WAL into the main file and empty the WAL, so the main file
        alone holds the session (its size is then the session's size). Outside a transaction only."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``'s answer: ``"ok"`` for a sound file."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


class _Transaction:
    """``SessionStore.transaction()``'s context manager. A class, not ``@contextlib.contextmanager``: every
    commit enters one, and a generator-based one costs several times as much to enter and leave."""

    __slots__ = ("_outermost", "_store")

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._outermost = False

    def __enter__(self) -> None:
        store = self._store
        if store._depth:
            store._depth += 1
            return
        store._writes.execute("BEGIN IMMEDIATE")
        store._depth = 1
        self._outermost = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        store = self._store
        if not self._outermost:
            store._depth -= 1
            return
        try:
            # A rolled-back transaction may have taken chunk numbers: re-read the next one from the file.
            end_transaction(
                store._writes, failed=exc_type is not None, after_rollback=store.chunks.load_next_seq
            )
        finally:
            store._depth = 0


@functools.cache
def _empty_file_image() -> bytes:
    """The bytes of an empty session file at the current schema, in WAL mode (built once per process)."""
    with tempfile.TemporaryDirectory(prefix="helix-schema-") as scratch:
        path = Path(scratch) / "empty.sqlite3"
        db = _connect(path)
        db.close()  # the last close folds the WAL into the file
        return path.read_bytes()


def _open_creating_parents(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        # The first session of its bucket directory. Only then: a mkdir per open cost a system call
        # (and a raised FileExistsError) on every activation.
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o600)


def _connect(path: Path, *, fresh: bool = False) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so transaction boundaries are exactly ours.
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreFileError(path, str(exc)) from exc
    try:
        # The flock makes this connection the file's only user while the store is open, so it also
        # holds SQLite's lock for good instead of taking it per transaction: in WAL mode the WAL index
        # then lives in process memory (no -shm file, no lock calls), which halves the cost of a small
        # commit (bench/store.py). The price: no other connection can read a live session's file.
        # Set before the first read: a read in WAL mode without it creates and maps a -shm file, which
        # the connection then keeps using (a third of the CPU of opening a new session file).
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        # A fresh file is our own image: at the current schema and in WAL mode already.
        version = SCHEMA_VERSION if fresh else int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(path, version, SCHEMA_VERSION)
        if not fresh and db.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise StoreFileError(path, "could not switch the file to WAL mode")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=OFF")
        if version < SCHEMA_VERSION:
            _migrate(db, version)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreFileError(path, str(exc)) from exc
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, version: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    # executescript() would commit our transaction; split on statement ends instead. The schema holds no
    # semicolons inside literals or triggers, so sqlite3.complete_statement is enough to find the ends.
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]
