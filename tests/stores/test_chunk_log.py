"""The chunk stream: batched appends, seq from 1 without gaps or repeats, across runs and reopening."""

from __future__ import annotations

import gc
import json
import sqlite3
from pathlib import Path

import pytest

from stores import ChunkDraft, SessionStore
from tests.crash_image import query_after_crash


def drafts(n: int, run_id: str = "run-1", kind: str = "text_delta") -> list[ChunkDraft]:
    return [ChunkDraft(run_id=run_id, type=kind, ts=1.7e12 + i, payload={"delta": f"d{i}"}) for i in range(n)]


def seqs(store: SessionStore) -> list[int]:
    return [chunk.seq for chunk in store.chunks.read(1, limit=100_000)]


def visible_to_another_connection(path: Path) -> int:
    """Chunks a crash right now would leave (the file and its WAL, recovered by a fresh connection)."""
    return int(query_after_crash(path, "SELECT count(*) FROM chunks")[0][0])


def test_chunks_appended_in_one_transaction_are_one_commit(store: SessionStore, commits: list[str]) -> None:
    with store.transaction():
        for batch in range(10):
            store.chunks.append(drafts(10, kind=f"batch{batch}"))
        assert visible_to_another_connection(store.path) == 0
    assert len(commits) == 1
    assert visible_to_another_connection(store.path) == 100


def test_chunks_appended_outside_a_transaction_are_still_one_commit(
    store: SessionStore, commits: list[str]
) -> None:
    store.chunks.append(drafts(50))
    assert len(commits) == 1
    assert seqs(store) == list(range(1, 51))


def test_seq_starts_at_1_and_is_consecutive_across_runs_and_reopening(store_path: Path) -> None:
    with SessionStore.open(store_path) as store:
        assert store.chunks.last_seq == 0
        first = store.chunks.append(drafts(3, run_id="run-1"))
        with store.transaction():
            second = store.chunks.append(drafts(4, run_id="run-2"))
    with SessionStore.open(store_path) as store:
        assert store.chunks.last_seq == 7
        third = store.chunks.append(drafts(2, run_id="run-3"))
        assert [c.seq for c in [*first, *second, *third]] == list(range(1, 10))
        assert seqs(store) == list(range(1, 10))
        assert [c.seq for c in store.chunks.for_run("run-2")] == [4, 5, 6, 7]


def test_rolled_back_transaction_stores_no_chunk_and_next_append_reuses_its_seqs(store: SessionStore) -> None:
    kept = store.chunks.append(drafts(3))
    with pytest.raises(RuntimeError, match="step crashed"), store.transaction():
        lost = store.chunks.append(drafts(5))
        assert [c.seq for c in lost] == [4, 5, 6, 7, 8]
        raise RuntimeError("step crashed")

    assert store.chunks.last_seq == 3
    assert store.chunks.read(1) == kept
    after = store.chunks.append(drafts(2, run_id="run-2"))
    assert [c.seq for c in after] == [4, 5]
    assert seqs(store) == [1, 2, 3, 4, 5]


def test_transaction_sqlite_rolled_back_by_itself_raises_its_error_and_leaves_no_seq_gap(
    store: SessionStore,
) -> None:
    store.chunks.append(drafts(1))
    with pytest.raises(sqlite3.OperationalError, match="interrupted"), store.transaction():
        store.chunks.append(drafts(3))
        # An interrupted write makes SQLite roll the whole transaction back on its own.
        store._db.set_progress_handler(lambda: 1, 1)
        try:
            store.set_name("never written")
        finally:
            store._db.set_progress_handler(None, 1)

    assert not store.in_transaction
    assert seqs(store) == [1]
    assert store.name is None
    assert store.chunks.append(drafts(1))[0].seq == 2


def test_nested_transaction_joins_the_outer_one_and_rolls_back_with_it(store: SessionStore) -> None:
    store.chunks.append(drafts(1))
    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():
            store.chunks.append(drafts(2))
        assert visible_to_another_connection(store.path) == 1
        raise RuntimeError("outer fails after the inner block ended")
    assert seqs(store) == [1]
    assert store.chunks.append(drafts(1))[0].seq == 2


def test_chunk_json_is_seq_run_type_ts_then_payload(store: SessionStore) -> None:
    (chunk,) = store.chunks.append(
        [ChunkDraft(run_id="run-1", type="tool_result", ts=1700000000123.0, payload={"toolCallId": "c1"})]
    )
    expected = {"seq": 1, "runId": "run-1", "type": "tool_result", "ts": 1700000000123.0, "toolCallId": "c1"}
    assert chunk.as_dict() == expected
    assert list(json.loads(chunk.json)) == ["seq", "runId", "type", "ts", "toolCallId"]
    assert store.chunks.read(1) == [chunk]


@pytest.mark.parametrize("field", ["seq", "runId", "type", "ts"])
def test_payload_setting_a_store_field_is_refused_and_nothing_is_stored(
    store: SessionStore, field: str
) -> None:
    store.chunks.append(drafts(1))
    bad = ChunkDraft(run_id="run-1", type="custom", ts=1.0, payload={field: 99, "value": 1})
    with pytest.raises(ValueError, match=field):
        store.chunks.append([*drafts(2), bad])
    assert seqs(store) == [1]
    assert store.chunks.append(drafts(1))[0].seq == 2


def test_payload_that_is_not_json_is_refused_and_consumes_no_seq(store: SessionStore) -> None:
    with pytest.raises(ValueError):
        store.chunks.append([ChunkDraft(run_id="run-1", type="custom", ts=1.0, payload={"x": float("nan")})])
    with pytest.raises(TypeError):
        store.chunks.append([ChunkDraft(run_id="run-1", type="custom", ts=1.0, payload={"x": object()})])
    assert seqs(store) == []
    assert store.chunks.append(drafts(1))[0].seq == 1


def test_read_returns_up_to_limit_chunks_from_seq_in_order(store: SessionStore) -> None:
    store.chunks.append(drafts(10))
    assert [c.seq for c in store.chunks.read(4, limit=3)] == [4, 5, 6]
    assert [c.seq for c in store.chunks.read(0, limit=2)] == [1, 2]
    assert [c.seq for c in store.chunks.read(9, limit=100)] == [9, 10]
    assert store.chunks.read(11) == []


def test_committing_chunks_one_at_a_time_leaves_nothing_for_the_collector(store: SessionStore) -> None:
    # Every object left tracked lengthens the collector's pauses for every session in the process; a
    # statement run through Connection.execute left one weak reference per cursor until 200 piled up.
    store.chunks.append(drafts(1))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(300):
        store.chunks.append(drafts(1, run_id=f"run-{i}"))
        with store.transaction():
            store.runs.update("missing", status="running")
    gc.collect()
    assert len(gc.get_objects()) - before < 20
