"""Live chunk feeds: how committed chunks reach listeners (WebSocket, SSE, in-process streams).

A listener never holds a queue the server fills. It pulls: it reads the session's stream from its own
next seq — from a small in-memory tail of recent chunks when it can, from the session file otherwise —
and, when caught up, waits until the feed says a later seq was committed. So a slow consumer costs the
server nothing but its position, replay and live join without a gap or a duplicate (both are the same
read), and a listener survives the actor's hibernation: the feed lives outside the actor.

The tail keeps each chunk as a plain tuple, not a :class:`~stores.StoredChunk`: the garbage collector
stops tracking a tuple of strings and numbers the first time it sees one, whereas every live named tuple
or object stays in its view. With 200 streaming sessions the tails held most of the objects in the
collector's older generations and made its pauses hundreds of milliseconds long.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from stores import StoredChunk

TAIL_LENGTH = 512


class ChunkFeed:
    """The committed tail of one session's stream, shared by that session's listeners."""

    def __init__(self) -> None:
        self.last_seq = 0
        self._tail: deque[tuple[int, str, str, str]] = deque(maxlen=TAIL_LENGTH)
        self._changed = trio.Event()
        self.listeners = 0

    def publish(self, stored: list[StoredChunk]) -> None:
        self._tail.extend([chunk.fields() for chunk in stored])
        self.last_seq = stored[-1].seq
        self._changed.set()
        self._changed = trio.Event()

    def recent(self, from_seq: int, limit: int) -> list[StoredChunk] | None:
        """Chunks from ``from_seq`` if the tail still holds that seq, ``[]`` if ``from_seq`` is the next one
        to be committed (a caught-up listener: every commit since the feed opened is in the tail, so there
        is nothing newer in the file either), else ``None`` (read the file)."""
        if not self._tail:
            return None
        first, last = self._tail[0][0], self._tail[-1][0]
        if from_seq == last + 1:
            return []
        if not first <= from_seq <= last:
            return None
        start = from_seq - first
        make = StoredChunk._make
        return [make(self._tail[i]) for i in range(start, min(len(self._tail), start + limit))]

    async def wait_past(self, seq: int) -> None:
        """Return once a chunk with ``seq >= seq`` has been published."""
        while self.last_seq < seq:
            await self._changed.wait()


class ChunkHub:
    """Feeds of the sessions that have listeners. Publishing to a session without one costs a dict miss."""

    def __init__(self) -> None:
        self._feeds: dict[str, ChunkFeed] = {}
        self.chunks_published = 0

    def publish(self, session_id: str, stored: list[StoredChunk]) -> None:
        self.chunks_published += len(stored)
        feed = self._feeds.get(session_id)
        if feed is not None:
            feed.publish(stored)

    @contextmanager
    def listen(self, session_id: str) -> Iterator[ChunkFeed]:
        feed = self._feeds.get(session_id)
        if feed is None:
            feed = self._feeds[session_id] = ChunkFeed()
        feed.listeners += 1
        try:
            yield feed
        finally:
            feed.listeners -= 1
            if feed.listeners == 0:
                del self._feeds[session_id]

    @property
    def listeners(self) -> int:
        return sum(feed.listeners for feed in self._feeds.values())
