"""Runs and checkpoints: create, update, read back, latest, count."""

from __future__ import annotations

import re

import pytest

from stores import SessionStore, new_checkpoint_id


def test_run_is_created_then_updated_and_reads_back(store: SessionStore) -> None:
    created = store.runs.create(
        run_id="run-1", agent_type="support", status="running", mode="start", metadata={"userId": "u1"}
    )
    assert store.runs.get("run-1") == created

    store.runs.update(
        "run-1",
        status="failed",
        error={"code": "boom", "message": "it broke"},
        resumable=False,
        resume_blocked_reason="aborted",
    )
    run = store.runs.get("run-1")
    assert run is not None
    assert (run.status, run.error, run.resumable, run.resume_blocked_reason) == (
        "failed",
        {"code": "boom", "message": "it broke"},
        False,
        "aborted",
    )
    assert (run.agent_type, run.mode, run.metadata, run.created_at) == (
        "support",
        "start",
        {"userId": "u1"},
        created.created_at,
    )
    assert run.updated_at >= created.updated_at


def test_run_output_round_trips_any_json(store: SessionStore) -> None:
    store.runs.create(run_id="run-1", agent_type="a", status="running", mode="start")
    store.runs.update("run-1", status="completed", output=[1, {"answer": "42"}, None])
    run = store.runs.get("run-1")
    assert run is not None and run.output == [1, {"answer": "42"}, None]


def test_updating_unknown_run_fields_is_refused_and_changes_nothing(store: SessionStore) -> None:
    created = store.runs.create(run_id="run-1", agent_type="a", status="running", mode="start")
    with pytest.raises(TypeError, match="agent_type"):
        store.runs.update("run-1", status="completed", agent_type="b")
    assert store.runs.get("run-1") == created


def test_update_without_fields_only_touches_updated_at(store: SessionStore) -> None:
    created = store.runs.create(run_id="run-1", agent_type="a", status="running", mode="start")
    store.runs.update("run-1")
    run = store.runs.get("run-1")
    assert run is not None and run.status == "running" and run.updated_at >= created.updated_at


def test_latest_run_is_the_last_created_and_unknown_run_is_none(store: SessionStore) -> None:
    assert store.runs.latest() is None
    for n in range(3):
        store.runs.create(run_id=f"run-{n}", agent_type="a", status="completed", mode="start")
    store.runs.update("run-0", status="failed")  # updating an older run does not make it the latest
    latest = store.runs.latest()
    assert latest is not None and latest.id == "run-2"
    assert [r.id for r in store.runs.list()] == ["run-0", "run-1", "run-2"]
    assert [r.id for r in store.runs.with_status("completed")] == ["run-1", "run-2"]
    assert store.runs.get("nope") is None


def test_checkpoint_ids_are_cpv1_and_unique() -> None:
    ids = {new_checkpoint_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"cpv1-[0-9a-f]{24}", i) for i in ids)


def test_checkpoints_count_and_latest_are_per_run(store: SessionStore) -> None:
    state_id = store.checkpoints.put_state({"n": 0})
    written = []
    for run_id, steps in (("run-1", 3), ("run-2", 2)):
        parent = None
        for step in range(1, steps + 1):
            checkpoint = store.checkpoints.add(
                run_id=run_id,
                step=step,
                parent_id=parent,
                head_message_id=None,
                state_id=state_id,
                status="completed",
            )
            assert checkpoint.id.startswith("cpv1-")
            parent = checkpoint.id
            written.append(checkpoint)

    assert store.checkpoints.count("run-1") == 3
    assert store.checkpoints.count("run-2") == 2
    assert store.checkpoints.count("run-3") == 0
    assert store.checkpoints.latest("run-1") == written[2]
    assert store.checkpoints.latest("run-2") == written[4]
    assert store.checkpoints.latest() == written[4]
    assert store.checkpoints.latest("run-3") is None
    assert store.checkpoints.list("run-2") == written[3:]
    assert store.checkpoints.list() == written
    assert store.checkpoints.get(written[1].id) == written[1]
    assert written[1].parent_id == written[0].id
    assert store.checkpoints.get("cpv1-missing") is None


def test_checkpoint_can_be_given_its_id(store: SessionStore) -> None:
    checkpoint = store.checkpoints.add(
        run_id="run-1",
        step=1,
        parent_id=None,
        head_message_id=None,
        state_id=None,
        status="completed",
        checkpoint_id="cpv1-0123456789abcdef01234567",
    )
    assert store.checkpoints.get("cpv1-0123456789abcdef01234567") == checkpoint
    assert store.checkpoints.get_state(None) is None


def test_equal_states_are_stored_once_and_different_ones_apart(store: SessionStore) -> None:
    first = store.checkpoints.put_state({"notes": ["a"], "count": 1})
    assert store.checkpoints.put_state({"notes": ["a"], "count": 1}) == first
    second = store.checkpoints.put_state({"notes": ["a", "b"], "count": 2})
    assert second != first
    assert store.checkpoints.get_state(first) == {"notes": ["a"], "count": 1}
    assert store.checkpoints.get_state(second) == {"notes": ["a", "b"], "count": 2}
