"""Files written by an older schema are migrated forward when opened, keeping their data."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from stores import SCHEMA_VERSION, ChunkDraft, NewMessage, SessionStore, UsageEntry, UsageTotals
from stores.schema import MIGRATIONS
from stores.session_store import _statements

# Written by the store code of commit b8d421f (schema version 2): a user message, one step (assistant
# tool call + tool result), a checkpoint with a state, two chunks, a completed run, two usage entries.
# Then VACUUMed to 512-byte pages in rollback-journal mode to keep it small.
SCHEMA_V2_FILE = Path(__file__).parent / "data" / "schema_v2.sqlite3"


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def write_version_1_file(path: Path) -> None:
    """A file as migration 0 left it: the tables, no usage rollup, ``user_version`` 1."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in _statements(MIGRATIONS[0]):
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        rows = [
            ("run-1", "llm", "model-a", None, 100, 20, 5, 3, 250.5, 1.0),
            ("run-1", "tool", None, "lookup", 0, 0, 0, 0, 12.25, 2.0),
            ("run-1", "llm", "model-a", None, 50, 10, 0, 0, 100.0, 3.0),
            ("run-2", "llm", "model-b", None, 7, 1, 0, 0, 9.0, 4.0),
            ("run-2", "subagent", None, "researcher", 30, 4, 0, 0, 500.0, 5.0),
        ]
        db.executemany(
            "INSERT INTO usage_entries(run_id, kind, model, name, input_tokens, output_tokens, cached_tokens,"
            " reasoning_tokens, duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    finally:
        db.close()


def test_version_1_file_is_migrated_and_usage_rollup_is_backfilled_from_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    write_version_1_file(path)

    with SessionStore.open(path) as store:
        rollup = store.usage.rollup()
        assert len(store.usage.entries()) == 5
    assert user_version(path) == SCHEMA_VERSION

    assert rollup.total == UsageTotals(
        calls=5, input_tokens=187, output_tokens=35, cached_tokens=5, reasoning_tokens=3, duration_ms=871.75
    )
    assert rollup.by_kind == {
        "llm": UsageTotals(
            calls=3,
            input_tokens=157,
            output_tokens=31,
            cached_tokens=5,
            reasoning_tokens=3,
            duration_ms=359.5,
        ),
        "tool": UsageTotals(calls=1, duration_ms=12.25),
        "subagent": UsageTotals(calls=1, input_tokens=30, output_tokens=4, duration_ms=500.0),
    }
    assert rollup.by_model == {
        "model-a": UsageTotals(
            calls=2,
            input_tokens=150,
            output_tokens=30,
            cached_tokens=5,
            reasoning_tokens=3,
            duration_ms=350.5,
        ),
        "model-b": UsageTotals(calls=1, input_tokens=7, output_tokens=1, duration_ms=9.0),
    }


def test_migrated_file_keeps_counting_new_usage_on_top_of_the_backfill(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    write_version_1_file(path)
    with SessionStore.open(path) as store:
        store.usage.add(UsageEntry(kind="llm", model="model-b", input_tokens=3, duration_ms=1.0))
    with SessionStore.open(path) as store:
        assert store.usage.rollup().by_model["model-b"] == UsageTotals(
            calls=2, input_tokens=10, output_tokens=1, duration_ms=10.0
        )


def test_file_written_by_schema_version_2_opens_with_all_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    shutil.copyfile(SCHEMA_V2_FILE, path)
    assert user_version(path) == 2

    with SessionStore.open(path) as store:
        assert store.integrity_check() == "ok"
        assert store.name == "golden-session"
        run = store.runs.get("run-1")
        assert run is not None
        assert (run.status, run.agent_type, run.output) == ("completed", "support", {"answer": "42"})
        checkpoint = store.checkpoints.latest("run-1")
        assert checkpoint is not None
        assert checkpoint.id == "cpv1-000000000000000000000001"
        conversation = store.messages.conversation(checkpoint.head_message_id)
        assert [(m.role, m.content) for m in conversation] == [
            ("user", "What is six times seven?"),
            ("assistant", "Let me compute."),
            ("tool", "42"),
        ]
        assert conversation[1].tool_calls == (
            {"id": "call-1", "name": "multiply", "arguments": {"a": 6, "b": 7}},
        )
        assert store.checkpoints.get_state(checkpoint.state_id) == {"answers": 1}
        assert [c.type for c in store.chunks.read(1)] == ["run_started", "run_completed"]
        assert store.usage.rollup().total == UsageTotals(
            calls=2, input_tokens=10, output_tokens=5, duration_ms=13.0
        )

        # and it takes new writes at the current schema
        store.runs.create(
            run_id="run-2", agent_type="support", status="running", mode="continue", start_head_id=3
        )
        (added,) = store.messages.append(
            checkpoint.head_message_id, [NewMessage(role="user", content="thanks")]
        )
        (chunk,) = store.chunks.append([ChunkDraft(run_id="run-2", type="run_resumed", ts=1.0, payload={})])
        assert chunk.seq == 3
        assert store.messages.conversation(added.id) == [*conversation, added]
    assert user_version(path) == SCHEMA_VERSION
    with SessionStore.open(path) as store:
        old_run, new_run = store.runs.list()
        assert (old_run.start_head_id, new_run.start_head_id) == (None, 3)


def test_reopening_a_current_file_runs_no_migration(store_path: Path) -> None:
    SessionStore.open(store_path).close()
    db = sqlite3.connect(store_path)
    schema = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    db.close()
    with SessionStore.open(store_path):
        pass
    db = sqlite3.connect(store_path)
    try:
        assert db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    finally:
        db.close()
