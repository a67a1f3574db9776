"""The output gate releases outputs only after their writes commit, and coalesces writes (group commit)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import GateClosedError, OutputGate, TransactionHeldError
from stores import SessionStore
from tests.crash_image import query_after_crash


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore.open(tmp_path / "ab" / "gate.sqlite3") as opened:
        yield opened


@pytest.fixture
async def serving() -> AsyncIterator[Callable[[OutputGate[str]], None]]:
    """``serving(gate)`` runs the gate's flusher for the rest of the test."""
    async with trio.open_nursery() as nursery:
        yield lambda gate: nursery.start_soon(gate.serve)
        nursery.cancel_scope.cancel()


def put(key: str) -> Callable[[SessionStore], Sequence[str]]:
    def write(store: SessionStore) -> Sequence[str]:
        store.set_meta(key, "1")
        return [key]

    return write


def fail(store: SessionStore) -> Sequence[str]:
    raise ValueError("constraint violated")


def visible_elsewhere(path: Path, key: str) -> bool:
    """Whether ``key`` is committed: whether a crash right now would leave it (the gate's promise)."""
    return bool(query_after_crash(path, "SELECT 1 FROM meta WHERE key = ?", (key,)))


async def test_writes_queued_close_together_commit_in_one_transaction(
    store: SessionStore, serving: Callable[[OutputGate[str]], None]
) -> None:
    delivered: list[list[str]] = []
    gate: OutputGate[str] = OutputGate(store, deliver=delivered.append)
    serving(gate)
    for i in range(100):
        gate.write(put(f"k{i}"))
    await gate.flush()
    assert delivered == [[f"k{i}" for i in range(100)]]
    stats = gate.statistics()
    assert (stats.transactions, stats.writes, stats.outputs) == (1, 100, 100)


async def test_concurrent_committers_share_transactions(store: SessionStore) -> None:
    gate: OutputGate[str] = OutputGate(store)
    results: dict[int, list[str]] = {}

    async def committer(i: int) -> None:
        for step in range(10):
            results.setdefault(i, []).extend(await gate.commit(put(f"w{i}-{step}")))

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(committer, i)
    assert results == {i: [f"w{i}-{step}" for step in range(10)] for i in range(50)}
    stats = gate.statistics()
    assert stats.writes == 500
    assert stats.transactions <= 20  # ~one per round of 50 committers, not one per write


async def test_outputs_are_delivered_only_after_their_transaction_commits(
    store: SessionStore, serving: Callable[[OutputGate[str]], None]
) -> None:
    seen: list[tuple[str, bool]] = []

    def deliver(outputs: list[str]) -> None:
        seen.extend((key, visible_elsewhere(store.path, key)) for key in outputs)

    gate: OutputGate[str] = OutputGate(store, deliver=deliver)
    serving(gate)
    gate.write(put("fire-and-forget"))
    await trio.testing.wait_all_tasks_blocked()  # the flusher committed it
    assert await gate.commit(put("awaited")) == ["awaited"]
    assert seen == [("fire-and-forget", True), ("awaited", True)]


async def test_failed_transaction_delivers_nothing_rolls_back_its_batch_and_raises_in_commit(
    store: SessionStore,
) -> None:
    delivered: list[list[str]] = []
    gate: OutputGate[str] = OutputGate(store, deliver=delivered.append)
    gate.write(put("innocent"))
    with pytest.raises(ValueError, match="constraint violated"):
        await gate.commit(fail)
    assert delivered == []
    assert not visible_elsewhere(store.path, "innocent")  # the whole batch rolled back
    assert gate.statistics().failed_transactions == 1
    # The gate keeps working.
    assert await gate.commit(put("later")) == ["later"]
    assert delivered == [["later"]]


async def test_failed_fire_and_forget_write_goes_to_on_error_and_the_next_flush_raises_it(
    store: SessionStore, serving: Callable[[OutputGate[str]], None]
) -> None:
    errors: list[BaseException] = []
    gate: OutputGate[str] = OutputGate(store, on_error=errors.append)
    serving(gate)
    gate.write(fail)
    await trio.testing.wait_all_tasks_blocked()
    assert [str(e) for e in errors] == ["constraint violated"]
    with pytest.raises(ValueError, match="constraint violated"):
        await gate.flush()
    await gate.flush()  # reported once


async def test_closed_gate_flushes_what_is_queued_then_refuses_writes(store: SessionStore) -> None:
    delivered: list[list[str]] = []
    gate: OutputGate[str] = OutputGate(store, deliver=delivered.append)
    gate.write(put("last"))
    gate.close()
    assert delivered == [["last"]]
    with pytest.raises(GateClosedError):
        gate.write(put("too late"))
    with pytest.raises(GateClosedError):
        await gate.commit(put("too late"))


async def test_gate_refuses_to_join_a_transaction_held_across_an_await(store: SessionStore) -> None:
    gate: OutputGate[str] = OutputGate(store)
    with store.transaction():
        gate.write(put("inside"))
        with pytest.raises(TransactionHeldError):
            await gate.flush()


async def test_cancelled_commit_still_commits_its_write(
    store: SessionStore, serving: Callable[[OutputGate[str]], None]
) -> None:
    delivered: list[list[str]] = []
    gate: OutputGate[str] = OutputGate(store, deliver=delivered.append)
    serving(gate)
    with trio.CancelScope() as scope:
        scope.cancel()
        await gate.commit(put("queued"))
    await trio.testing.wait_all_tasks_blocked()
    assert delivered == [["queued"]]


async def test_an_eager_gate_commits_a_lone_write_at_once_and_coalesces_the_writes_right_behind_it(
    store: SessionStore, serving: Callable[[OutputGate[str]], None], autojump_clock: trio.testing.MockClock
) -> None:
    delivered: list[list[str]] = []
    gate: OutputGate[str] = OutputGate(store, deliver=delivered.append, eager_after=0.01)
    serving(gate)
    gate.write(put("first"))
    assert delivered == [["first"]]  # committed and released before write() returned
    assert visible_elsewhere(store.path, "first")
    for i in range(5):  # a burst right behind it waits for the flusher and shares one commit
        gate.write(put(f"burst{i}"))
    assert delivered == [["first"]]
    await gate.flush()
    assert delivered == [["first"], [f"burst{i}" for i in range(5)]]
    await trio.sleep(0.01)  # quiet again: the next lone write goes out at once
    gate.write(put("after a pause"))
    assert delivered[-1] == ["after a pause"]
    await trio.sleep(0.01)
    gate.write(put("joins the next commit"), eager=False)  # the writer's own commit follows at once
    assert await gate.commit(put("own commit")) == ["own commit"]
    assert delivered[-1] == ["joins the next commit", "own commit"]
    assert gate.statistics().transactions == 4


async def test_an_eager_gate_never_commits_inside_a_transaction_and_reports_a_failed_eager_write(
    store: SessionStore, autojump_clock: trio.testing.MockClock
) -> None:
    delivered: list[list[str]] = []
    errors: list[BaseException] = []
    gate: OutputGate[str] = OutputGate(
        store, deliver=delivered.append, on_error=errors.append, eager_after=0.01
    )
    with store.transaction():
        gate.write(put("inside"))  # queued: committing here would join a transaction not ours
        assert delivered == []
    await gate.flush()
    assert delivered == [["inside"]]
    await trio.sleep(0.01)
    gate.write(fail)  # fails at once: nothing delivered, the error reported now and to the next flush
    assert [str(e) for e in errors] == ["constraint violated"]
    with pytest.raises(ValueError, match="constraint violated"):
        await gate.flush()
    assert delivered == [["inside"]]
