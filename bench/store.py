"""Benchmark of the per-session SQLite store. Run from the repository root: ``python bench/store.py``.

Prints one JSON object:

- ``chunk_appends_per_s``: chunks stored per second, 100 per transaction and one per transaction;
- ``bytes_per_step``: file bytes added per model step at conversation lengths 10, 100 and 1,000 steps
  (the growth over the next ``window`` steps divided by ``window``, measured on the main file after
  ``PRAGMA wal_checkpoint(TRUNCATE)``); flat means a checkpoint copies neither the conversation nor the state;
- ``step_commit_ms``: time to commit one step's transaction;
- ``read_conversation_ms``: ``messages.conversation(head)`` at a checkpoint 1,000 steps deep (target < 5 ms),
  warm (store open) and cold (first read after opening the file);
- ``open_close_ms``: ``SessionStore.open`` + ``close`` of an existing file (target < 1 ms median).

A step is what the engine commits in one transaction: 25 ``text_delta`` chunks, an assistant message of
about 200 characters with one tool call, the tool's result message, the state, a checkpoint, a usage entry,
and the ``step_finished`` and ``checkpoint`` chunks. Timings are medians over repeats, with min and max.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs without installing the project

from stores import ChunkDraft, NewMessage, SessionStore, UsageEntry

RUN_ID = "run-0123456789abcdef"
ANSWER = "Let me look that up for you: checking the order status, the shipping address and the invoice. "


def summary(samples: list[float], digits: int = 3) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), digits),
        "min": round(min(samples), digits),
        "max": round(max(samples), digits),
    }


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds per call of ``action``."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def text_deltas(count: int) -> list[ChunkDraft]:
    now = time.time() * 1000
    return [
        ChunkDraft(run_id=RUN_ID, type="text_delta", ts=now, payload={"delta": ANSWER[i % 90 : i % 90 + 8]})
        for i in range(count)
    ]


def chunk_appends_per_s(directory: Path, *, batch: int, total: int, repeats: int) -> dict[str, float]:
    rates = []
    for repeat in range(repeats):
        with SessionStore.open(directory / f"chunks-{batch}-{repeat}.sqlite3") as store:
            drafts = text_deltas(batch)
            start = time.perf_counter()
            for _ in range(total // batch):
                with store.transaction():
                    store.chunks.append(drafts)
            rates.append(total / (time.perf_counter() - start))
    return summary(rates, 0)


def write_step(store: SessionStore, step: int, head: int | None) -> int:
    with store.transaction():
        store.chunks.append(text_deltas(25))
        messages = store.messages.append(
            head,
            [
                NewMessage(
                    role="assistant",
                    content=f"Step {step}. " + ANSWER * 2,
                    tool_calls=[
                        {"id": f"call_{step:08d}", "name": "lookup_order", "arguments": {"order": step}}
                    ],
                ),
                NewMessage(
                    role="tool",
                    content=f'{{"order": {step}, "status": "shipped"}}',
                    tool_call_id=f"call_{step:08d}",
                ),
            ],
        )
        state_id = store.checkpoints.put_state({"lookups": step // 5, "last_tool": "lookup_order"})
        latest = store.checkpoints.latest(RUN_ID)
        checkpoint = store.checkpoints.add(
            run_id=RUN_ID,
            step=step,
            parent_id=None if latest is None else latest.id,
            head_message_id=messages[-1].id,
            state_id=state_id,
            status="completed",
        )
        store.usage.add(
            UsageEntry(
                kind="llm", model="model-a", run_id=RUN_ID, input_tokens=900 + 60 * step, output_tokens=60
            )
        )
        now = time.time() * 1000
        store.chunks.append(
            [
                ChunkDraft(
                    run_id=RUN_ID, type="step_finished", ts=now, payload={"usage": {"outputTokens": 60}}
                ),
                ChunkDraft(run_id=RUN_ID, type="checkpoint", ts=now, payload={"checkpointId": checkpoint.id}),
            ]
        )
    return messages[-1].id


def file_bytes(store: SessionStore) -> int:
    """The main file's size once the WAL is folded into it (the store is idle)."""
    store.fold_wal()
    return store.path.stat().st_size


def main() -> None:
    started = time.perf_counter()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="helix-bench-") as tmp:
        directory = Path(tmp)

        result["chunk_appends_per_s"] = {
            "batched_100_per_transaction": chunk_appends_per_s(directory, batch=100, total=20_000, repeats=5),
            "one_per_transaction": chunk_appends_per_s(directory, batch=1, total=2_000, repeats=5),
        }

        window = 50
        lengths = (10, 100, 1000)
        path = directory / "conversation.sqlite3"
        sizes: dict[int, int] = {}
        step_ms: list[float] = []
        heads: dict[int, int] = {}
        with SessionStore.open(path) as store:
            head = store.messages.append(None, [NewMessage(role="user", content="Where is my order?")])[-1].id
            marks = sorted({*lengths, *(n + window for n in lengths)})
            for step in range(1, marks[-1] + 1):
                start = time.perf_counter()
                head = write_step(store, step, head)
                step_ms.append((time.perf_counter() - start) * 1000)
                heads[step] = head
                if step in marks:
                    sizes[step] = file_bytes(store)
            result["bytes_per_step"] = {
                str(n): round((sizes[n + window] - sizes[n]) / window) for n in lengths
            }
            per_step = list(result["bytes_per_step"].values())
            result["bytes_per_step_window"] = window
            result["bytes_per_step_spread"] = round((max(per_step) - min(per_step)) / min(per_step), 3)
            result["file_bytes_at_1000_steps"] = sizes[1000]
            result["step_commit_ms"] = summary(step_ms)

            deep = store.checkpoints.list(RUN_ID)[999]
            assert deep.step == 1000 and deep.head_message_id == heads[1000]
            messages = len(store.messages.conversation(deep.head_message_id))
            warm = timed(lambda: store.messages.conversation(deep.head_message_id), repeats=200)

        def first_read_after_open() -> float:
            with SessionStore.open(path) as reopened:
                start = time.perf_counter()
                reopened.messages.conversation(deep.head_message_id)
                return (time.perf_counter() - start) * 1000

        cold = [first_read_after_open() for _ in range(30)]
        result["read_conversation_ms"] = {
            "steps": 1000,
            "messages": messages,
            "warm": summary(warm),
            "cold": summary(cold),
            "target_ms": 5,
        }

        def open_close() -> None:
            SessionStore.open(path).close()

        open_close()  # the first open after the writes folds the WAL back; time the steady state
        result["open_close_ms"] = {**summary(timed(open_close, repeats=300)), "target_ms": 1}

    result["environment"] = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
