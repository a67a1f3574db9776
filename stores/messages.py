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


_PATH_TO_ROOT = """
WITH RECURSIVE path(id, parent_id, role, content, tool_calls, tool_call_id, depth) AS (
    SELECT id, parent_id, role, content, tool_calls, tool_call_id, 0 FROM messages WHERE id = ?
    UNION ALL
    SELECT m.id, m.parent_id, m.role, m.content, m.tool_calls, m.tool_call_id, path.depth + 1
    FROM messages AS m JOIN path ON m.id = path.parent_id
)
SELECT id, parent_id, role, content, tool_calls, tool_call_id FROM path ORDER BY depth DESC
"""


class MessageTree:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def append(self, parent_id: int | None, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        """Append ``messages`` as a chain below ``parent_id`` (``None``: a new root). Returns them stored;
        the last one's id is the new head."""
        stored: list[StoredMessage] = []
        now = time.time()
        for message in messages:
            tool_calls = tuple(dict(call) for call in message.tool_calls)
            cursor = self._db.execute(
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
        """The messages from the root to ``head_id``, in order (empty for ``None``)."""
        if head_id is None:
            return []
        return [
            StoredMessage(
                id=row[0],
                parent_id=row[1],
                role=row[2],
                content=row[3],
                tool_calls=tuple(codec.loads(row[4])) if row[4] else (),
                tool_call_id=row[5],
            )
            for row in self._db.execute(_PATH_TO_ROOT, (head_id,))
        ]

    def exists(self, message_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is not None
