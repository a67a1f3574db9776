"""The conversation as a tree of messages.

Each stored message points to its parent; a conversation is the path from a head back to the root. A
branch is only a different head, so branches share their prefix and nothing is ever copied.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import codec
from .atomic import atomically


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """A message as stored. ``tool_calls`` items are ``{"id", "name", "arguments"}`` dicts."""

    id: int
    parent_id: int | None
    role: str
    content: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    role: str
    content: str
    tool_calls: Sequence[dict[str, Any]] = ()
    tool_call_id: str | None = None


# Newest first from ``id <= ?``: the walk in ``conversation`` follows parent links down this index scan.
_DOWN_FROM = (
    "SELECT id, parent_id, role, content, tool_calls, tool_call_id FROM messages"
    " WHERE id <= ? ORDER BY id DESC"
)


_new_object = object.__new__


def _stored_message(
    id: int,
    parent_id: int | None,
    role: str,
    content: str,
    tool_calls: tuple[dict[str, Any], ...],
    tool_call_id: str | None,
) -> StoredMessage:
    """``StoredMessage(...)`` for the read path, built without the frozen dataclass's ``__init__``: its one
    ``object.__setattr__`` per field was a third of reading a long conversation. Same object: equal, hashable
    and frozen as any other (the branch test compares what ``conversation`` builds with what ``append``
    built). Keep the fields here in step with the class."""
    message: StoredMessage = _new_object(StoredMessage)
    message.__dict__.update(
        id=id,
        parent_id=parent_id,
        role=role,
        content=content,
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
    )
    return message


class MessageTree:
    def __init__(self, db: sqlite3.Connection, writes: sqlite3.Cursor) -> None:
        self._db = db
        self._writes = writes

    def append(self, parent_id: int | None, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        """Append ``messages`` as a chain below ``parent_id`` (``None``: a new root). Returns them stored;
        the last one's id is the new head. Raises ``ValueError`` if ``parent_id`` names no message (nothing
        is written then)."""
        if parent_id is not None and not self.exists(parent_id):
            raise ValueError(f"cannot append below message {parent_id}: no such message")
        stored: list[StoredMessage] = []
        now = time.time()
        with atomically(self._writes):
            for message in messages:
                tool_calls = tuple(dict(call) for call in message.tool_calls)
                cursor = self._writes.execute(
                    "INSERT INTO messages(parent_id, role, content, tool_calls, tool_call_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        parent_id,
                        message.role,
                        message.content,
                        codec.dumps(list(tool_calls)) if tool_calls else None,
                        message.tool_call_id,
                        now,
                    ),
                )
                assert cursor.lastrowid is not None
                stored.append(
                    StoredMessage(
                        id=cursor.lastrowid,
                        parent_id=parent_id,
                        role=message.role,
                        content=message.content,
                        tool_calls=tool_calls,
                        tool_call_id=message.tool_call_id,
                    )
                )
                parent_id = cursor.lastrowid
        return stored

    def conversation(self, head_id: int | None) -> list[StoredMessage]:
        """The messages from the root to ``head_id``, in order (empty for ``None`` or an unknown id)."""
        # A parent is always older than its child (``append`` checks that it exists, and a new rowid is
        # larger than every existing one), so the path from the head to the root has descending ids. Walk
        # it on one descending index scan; a row of another branch in between means a fork point, and the
        # walk seeks straight to the parent it wants. A recursive CTE over the same links took about four
        # times as long (it copies every row into its queue, then sorts); the runtime reads the whole
        # conversation to start or resume each run and to answer /messages.
        rows: list[tuple[Any, ...]] = []
        want = head_id
        while want is not None:
            found_any = False
            for row in self._db.execute(_DOWN_FROM, (want,)):
                if row[0] != want:
                    break
                found_any = True
                rows.append(row)
                want = row[1]
                if want is None:
                    break
            if not found_any:
                break  # ``want`` does not exist: the conversation is what was found so far
        rows.reverse()
        # One decode for all tool calls: json.loads costs far more per call than per byte.
        encoded = [row[4] for row in rows if row[4]]
        decoded = iter(codec.loads("[" + ",".join(encoded) + "]") if encoded else ())
        return [
            _stored_message(row[0], row[1], row[2], row[3], tuple(next(decoded)) if row[4] else (), row[5])
            for row in rows
        ]

    def exists(self, message_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is not None
