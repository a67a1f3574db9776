"""A checkpoint never copies the conversation or an unchanged state: bytes per step stay flat."""

from __future__ import annotations

from typing import Any

from stores import ChunkDraft, NewMessage, SessionStore, UsageEntry


def write_step(store: SessionStore, step: int, head: int | None, state: Any) -> int:
    """One model step as the engine commits it: messages, state, checkpoint, usage and closing chunks."""
    with store.transaction():
        drafts = [
            ChunkDraft(run_id="run", type="text_delta", ts=1.7e12, payload={"delta": f"word{i} "})
            for i in range(25)
        ]
        store.chunks.append(drafts)
        messages = store.messages.append(
            head,
            [
                NewMessage(
                    role="assistant",
                    content=f"step {step}: " + "thinking about the order " * 8,
                    tool_calls=[{"id": f"call-{step}", "name": "lookup", "arguments": {"item": "widget"}}],
                ),
                NewMessage(role="tool", content="widget: 3 in stock", tool_call_id=f"call-{step}"),
            ],
        )
        checkpoint = store.checkpoints.add(
            run_id="run",
            step=step,
            parent_id=None,
            head_message_id=messages[-1].id,
            state_id=store.checkpoints.put_state(state),
            status="completed",
        )
        store.usage.add(
            UsageEntry(kind="llm", model="model-a", run_id="run", input_tokens=step, output_tokens=40)
        )
        store.chunks.append(
            [
                ChunkDraft(
                    run_id="run", type="step_finished", ts=1.7e12, payload={"usage": {"outputTokens": 40}}
                ),
                ChunkDraft(
                    run_id="run", type="checkpoint", ts=1.7e12, payload={"checkpointId": checkpoint.id}
                ),
            ]
        )
    return messages[-1].id


def count(store: SessionStore, table: str) -> int:
    return int(store._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def file_bytes(store: SessionStore) -> int:
    """Size of the main file once the WAL is folded into it (the store is idle, so nothing is lost)."""
    store.fold_wal()
    return store.path.stat().st_size


def test_checkpoints_point_at_messages_and_an_unchanged_state_is_stored_once(store: SessionStore) -> None:
    head = store.messages.append(None, [NewMessage(role="user", content="hello")])[-1].id
    for step in range(1, 51):
        head = write_step(store, step, head, {"notes": ["unchanged"]})

    assert count(store, "checkpoints") == 50
    assert count(store, "messages") == 1 + 2 * 50  # one copy of each message, however many checkpoints
    assert count(store, "states") == 1

    head = write_step(store, 51, head, {"notes": ["changed"]})
    assert count(store, "states") == 2
    assert len(store.messages.conversation(head)) == 1 + 2 * 51


def test_bytes_per_step_at_step_500_are_within_20_percent_of_step_10(store: SessionStore) -> None:
    window = 50
    head = store.messages.append(None, [NewMessage(role="user", content="hello")])[-1].id
    growth: dict[int, float] = {}
    step = 0
    for start in (10, 500):
        while step < start:
            step += 1
            head = write_step(store, step, head, {"notes": ["unchanged"]})
        before = file_bytes(store)
        for _ in range(window):
            step += 1
            head = write_step(store, step, head, {"notes": ["unchanged"]})
        growth[start] = (file_bytes(store) - before) / window

    assert growth[10] > 0
    assert abs(growth[500] - growth[10]) / growth[10] <= 0.20, growth
