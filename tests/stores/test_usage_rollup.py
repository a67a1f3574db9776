"""The usage rollup equals the sum of the entries, always."""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stores import SessionStore, UsageEntry, UsageRollup, UsageTotals

# Durations are multiples of 1/1024 ms, so float sums are exact in any order and the comparison can be ==.
entries = st.builds(
    UsageEntry,
    kind=st.sampled_from(["llm", "tool", "subagent"]),
    model=st.none() | st.sampled_from(["model-a", "model-b"]) | st.text(min_size=1, max_size=12),
    name=st.none() | st.text(max_size=12),
    run_id=st.sampled_from(["run-1", "run-2"]),
    input_tokens=st.integers(0, 10**9),
    output_tokens=st.integers(0, 10**9),
    cached_tokens=st.integers(0, 10**9),
    reasoning_tokens=st.integers(0, 10**9),
    duration_ms=st.integers(0, 10**9).map(lambda n: n / 1024),
)
# Each batch is one transaction; some fail and roll back, and then none of their entries may count.
batches = st.lists(st.tuples(st.lists(entries, min_size=1, max_size=5), st.booleans()), max_size=12)


def totals(of: list[UsageEntry]) -> UsageTotals:
    return UsageTotals(
        calls=len(of),
        input_tokens=sum(e.input_tokens for e in of),
        output_tokens=sum(e.output_tokens for e in of),
        cached_tokens=sum(e.cached_tokens for e in of),
        reasoning_tokens=sum(e.reasoning_tokens for e in of),
        duration_ms=sum(e.duration_ms for e in of),
    )


def expected_rollup(of: list[UsageEntry]) -> UsageRollup:
    by_kind: dict[str, list[UsageEntry]] = defaultdict(list)
    by_model: dict[str, list[UsageEntry]] = defaultdict(list)
    for entry in of:
        by_kind[entry.kind].append(entry)
        if entry.model is not None:
            by_model[entry.model].append(entry)
    return UsageRollup(
        total=totals(of),
        by_kind={kind: totals(group) for kind, group in by_kind.items()},
        by_model={model: totals(group) for model, group in by_model.items()},
    )


@settings(max_examples=100, deadline=None)
@given(batches=batches, reopen_after=st.integers(0, 12))
def test_usage_rollup_equals_the_sum_of_committed_entries(
    batches: list[tuple[list[UsageEntry], bool]], reopen_after: int
) -> None:
    directory = Path(tempfile.mkdtemp())
    path = directory / "session.sqlite3"
    committed: list[UsageEntry] = []
    store = SessionStore.open(path)
    try:
        for index, (batch, rolls_back) in enumerate(batches):
            if index == reopen_after:
                store.close()
                store = SessionStore.open(path)
            with pytest.raises(RuntimeError) if rolls_back else nullcontext(), store.transaction():
                for entry in batch:
                    store.usage.add(entry)
                if rolls_back:
                    raise RuntimeError("step crashed")
            if not rolls_back:
                committed.extend(batch)
            assert store.usage.rollup() == expected_rollup(committed)
        assert store.usage.entries() == committed
        assert store.usage.rollup() == expected_rollup(store.usage.entries())
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_entries_without_a_model_count_in_totals_and_kind_but_in_no_model(store: SessionStore) -> None:
    store.usage.add(
        UsageEntry(kind="llm", model="model-a", input_tokens=10, output_tokens=2, duration_ms=5.0)
    )
    store.usage.add(UsageEntry(kind="tool", name="lookup", duration_ms=1.5))
    store.usage.add(UsageEntry(kind="subagent", name="researcher", input_tokens=7, duration_ms=3.0))

    rollup = store.usage.rollup()
    assert rollup.total == UsageTotals(calls=3, input_tokens=17, output_tokens=2, duration_ms=9.5)
    assert set(rollup.by_kind) == {"llm", "tool", "subagent"}
    assert rollup.by_kind["tool"] == UsageTotals(calls=1, duration_ms=1.5)
    assert rollup.by_model == {
        "model-a": UsageTotals(calls=1, input_tokens=10, output_tokens=2, duration_ms=5.0)
    }


def test_empty_session_has_zero_totals_and_no_kinds_or_models(store: SessionStore) -> None:
    assert store.usage.rollup() == UsageRollup(total=UsageTotals(), by_kind={}, by_model={})
    assert store.usage.entries() == []


def test_entries_can_be_read_per_run(store: SessionStore) -> None:
    first = UsageEntry(kind="llm", model="model-a", run_id="run-1", input_tokens=1)
    second = UsageEntry(kind="llm", model="model-a", run_id="run-2", input_tokens=2)
    store.usage.add(first)
    store.usage.add(second)
    assert store.usage.entries("run-2") == [second]
    assert store.usage.entries() == [first, second]


def test_entry_added_outside_a_transaction_commits_with_its_rollup_row_in_one_commit(
    store: SessionStore, commits: list[str]
) -> None:
    store.usage.add(UsageEntry(kind="llm", model="model-a", input_tokens=5))
    assert len(commits) == 1
    assert store.usage.rollup().total == UsageTotals(calls=1, input_tokens=5)
