"""A graceful stop: running work reaches a safe point (or is cancelled after the grace period), the gates
flush, and every store closes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import trio
import trio.testing

from stores import SessionStore, file_for_name

from .support import Journal, ScriptedActor, scripted_directory


class Worker:
    """Work an actor spawns: writes a step through the gate every second until told to stop, and stops only
    between steps (its safe point)."""

    def __init__(self) -> None:
        self.stop = trio.Event()
        self.done = trio.Event()
        self.steps = 0

    async def run(self, actor: ScriptedActor) -> None:
        try:
            while not self.stop.is_set():
                await trio.sleep(1)
                self.steps += 1
                step = self.steps

                def write(store: SessionStore, step: int = step) -> Sequence[int]:
                    store.set_meta("steps", str(step))
                    return [step]

                actor.gate.write(write)
        finally:
            self.done.set()


async def test_shutdown_lets_running_work_reach_a_safe_point_then_closes_every_store(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    workers = {"a": Worker(), "b": Worker()}

    async def start(actor: ScriptedActor) -> None:
        actor.spawn(workers[actor.name].run, actor)

    async def stop_work(actor: ScriptedActor, reason: str) -> None:
        worker = workers[actor.name]
        worker.stop.set()
        await worker.done.wait()

    journal.on_shutdown = stop_work
    async with scripted_directory(data_dir, journal, shutdown_grace=10.0) as directory:
        for name in workers:
            await directory.call(name, start)
        await trio.sleep(5.5)
        closing = trio.current_time()
    assert trio.current_time() - closing < 1.0  # reaching a safe point took less than the grace period
    assert sorted(journal.shutdowns) == [("a", "shutdown"), ("b", "shutdown")]
    for name, worker in workers.items():
        assert worker.done.is_set() and worker.steps >= 5
        # Every store is closed (the lock is free) and the last step's write was flushed into it.
        with SessionStore.open(file_for_name(data_dir, name)) as store:
            assert store.get_meta("steps") == str(worker.steps)


async def test_work_that_ignores_shutdown_is_cancelled_after_the_grace_period(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    cancelled: list[tuple[float, str]] = []

    async def stubborn() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled as exc:
            cancelled.append((trio.current_time(), str(exc.reason)))
            raise

    async def start(actor: ScriptedActor) -> None:
        actor.spawn(stubborn)

    async with scripted_directory(data_dir, journal, shutdown_grace=10.0) as directory:
        await directory.call("s", start)
        closing = trio.current_time()
    assert len(cancelled) == 1
    when, reason = cancelled[0]
    assert when - closing == 10.0
    assert "shutdown" in reason
    SessionStore.open(file_for_name(data_dir, "s")).close()


async def test_shutdown_of_an_outer_cancellation_still_closes_the_stores(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    with trio.CancelScope() as outer:
        async with scripted_directory(data_dir, journal) as directory:
            await directory.call("c", "hello")
            outer.cancel(reason="the server is going away")
            await trio.sleep_forever()
    assert journal.shutdowns == [("c", "shutdown")]
    SessionStore.open(file_for_name(data_dir, "c")).close()
