"""Live chunk feeds: what a listened session's tail of recent chunks costs and returns."""

from __future__ import annotations

import gc

from helix.feed import TAIL_LENGTH, ChunkHub
from stores import StoredChunk


def chunk(seq: int) -> StoredChunk:
    return StoredChunk(seq, "run-1", "text_delta", f'{{"seq":{seq},"delta":"........"}}')


def test_a_full_tail_adds_nothing_for_the_garbage_collector_to_walk_and_reads_back_equal() -> None:
    # With 200 streaming sessions the tails' chunks were most of the objects in the collector's older
    # generations, and its full passes stalled every stream for hundreds of milliseconds.
    hub = ChunkHub()
    with hub.listen("s") as feed:
        gc.collect()
        before = len(gc.get_objects())
        for seq in range(1, TAIL_LENGTH + 1):
            hub.publish("s", [chunk(seq)])
        gc.collect()
        assert len(gc.get_objects()) - before < 20
        assert feed.recent(1, TAIL_LENGTH) == [chunk(seq) for seq in range(1, TAIL_LENGTH + 1)]
        assert feed.recent(TAIL_LENGTH + 1, 10) == []
        hub.publish("s", [chunk(TAIL_LENGTH + 1)])
        assert feed.recent(1, 10) is None  # fell out of the tail: read the file
        assert [c.seq for c in feed.recent(TAIL_LENGTH, 10) or []] == [TAIL_LENGTH, TAIL_LENGTH + 1]
