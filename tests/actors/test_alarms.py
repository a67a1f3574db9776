"""An actor's alarm wakes it at its time, across eviction and restarts, at least once."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
import trio.testing

from stores import SessionStore, file_for_name

from .support import Journal, ScriptedActor, scripted_directory, settled


def _set_alarm_in(seconds: float) -> Callable[[ScriptedActor], Awaitable[float]]:
    async def set_alarm(actor: ScriptedActor) -> float:
        at = trio.current_time() + seconds
        actor.set_alarm(at)
        return at

    return set_alarm


def _index_rows(data_dir: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(data_dir / "alarms.sqlite3") as db:
        return [(str(name), float(at)) for name, at in db.execute("SELECT name, at FROM alarms")]


async def test_alarm_fires_at_its_time_even_after_the_actor_was_evicted(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, idle_timeout=5.0) as directory:
        at = await directory.call("sleeper", _set_alarm_in(30))
        assert _index_rows(data_dir) == [("sleeper", at)]
        await trio.sleep(10)
        assert not directory.is_live("sleeper")  # hibernated meanwhile; the alarm wakes it
        await settled(directory)
        await trio.sleep(100)
        assert journal.alarms == [("sleeper", at)]
        stats = directory.statistics()
        assert (stats.alarms_pending, stats.alarms_fired, stats.activations) == (0, 1, 2)
        assert _index_rows(data_dir) == []
        assert (await directory.get("sleeper")).get_alarm() is None


async def test_pending_alarm_fires_after_a_restart(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal) as directory:
        at = await directory.call("patient", _set_alarm_in(100))
    assert journal.alarms == []
    async with scripted_directory(data_dir, journal) as directory:  # a new process, as far as actors go
        assert directory.statistics().alarms_pending == 1
        assert not directory.is_live("patient")
        await trio.sleep_until(at + 1)
        assert journal.alarms == [("patient", at)]
        assert directory.statistics().alarms_pending == 0
    with SessionStore.open(file_for_name(data_dir, "patient")) as store:
        assert store.get_alarm() is None


async def test_failing_alarm_handler_is_retried_with_capped_exponential_backoff(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    attempts: list[float] = []

    async def flaky(actor: ScriptedActor) -> None:
        attempts.append(trio.current_time())
        if len(attempts) <= 4:
            assert actor.get_alarm() is not None  # not cleared while it keeps failing
            raise ConnectionError("webhook down")

    journal.on_alarm = flaky
    async with scripted_directory(
        data_dir, journal, alarm_retry_initial=1.0, alarm_retry_max=3.0
    ) as directory:
        at = await directory.call("retry", _set_alarm_in(10))
        await trio.sleep(100)
        assert [round(t - at, 6) for t in attempts] == [0, 1, 1 + 2, 1 + 2 + 3, 1 + 2 + 3 + 3]
        stats = directory.statistics()
        assert (stats.alarm_failures, stats.alarms_fired, stats.alarms_pending) == (4, 1, 0)
        assert (await directory.get("retry")).get_alarm() is None


async def test_alarm_handler_waits_its_turn_behind_messages(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async def long_message(actor: ScriptedActor) -> None:
        await trio.sleep(20)
        journal.handled.append((actor.name, "long message done"))

    async with scripted_directory(data_dir, journal) as directory:
        start = trio.current_time()
        await directory.call("serial", _set_alarm_in(5))
        await directory.call("serial", long_message)
        await trio.sleep(5)
        assert journal.alarms == [("serial", start + 20)]


async def test_alarm_can_set_the_next_alarm(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async def every_ten_seconds(actor: ScriptedActor) -> None:
        if len(journal.alarms) < 3:
            actor.set_alarm(trio.current_time() + 10)

    journal.on_alarm = every_ten_seconds
    async with scripted_directory(data_dir, journal) as directory:
        at = await directory.call("ticker", _set_alarm_in(10))
        await trio.sleep(100)
        assert [t - at for _, t in journal.alarms] == [0, 10, 20]
        assert directory.statistics().alarms_pending == 0


async def test_cleared_alarm_never_fires(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async def clear(actor: ScriptedActor) -> None:
        actor.set_alarm(None)

    async with scripted_directory(data_dir, journal) as directory:
        await directory.call("c", _set_alarm_in(10))
        await directory.call("c", clear)
        await trio.sleep(100)
        assert journal.alarms == []
        assert _index_rows(data_dir) == []


async def test_index_row_whose_file_has_no_alarm_is_dropped_without_waking_the_handler(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal) as directory:
        at = await directory.call("stale", _set_alarm_in(50))
    # A crash between the file's write and the index's leaves the index holding more than the file.
    with SessionStore.open(file_for_name(data_dir, "stale")) as store:
        store.set_alarm(None)
    async with scripted_directory(data_dir, journal) as directory:
        await trio.sleep_until(at + 1)
        assert journal.alarms == []
        assert directory.statistics().alarms_pending == 0
        assert _index_rows(data_dir) == []


async def test_alarm_in_the_file_but_missing_from_the_index_is_armed_on_activation(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    with SessionStore.open(file_for_name(data_dir, "copied")) as store:
        at = trio.current_time() + 30
        store.set_alarm(at)
    async with scripted_directory(data_dir, journal) as directory:
        await directory.call("copied", "hello")
        assert _index_rows(data_dir) == [("copied", at)]
        await trio.sleep(60)
        assert journal.alarms == [("copied", at)]


async def test_alarm_of_a_session_another_writer_holds_is_retried_until_it_can_be_delivered(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal) as directory:
        at = await directory.call("held", _set_alarm_in(10))
    other_writer = SessionStore.open(file_for_name(data_dir, "held"))  # like another process owning it
    async with scripted_directory(
        data_dir, journal, alarm_retry_initial=1.0, alarm_retry_max=4.0
    ) as directory:
        await trio.sleep_until(at + 20)
        stats = directory.statistics()
        assert journal.alarms == [] and stats.alarm_failures >= 5 and stats.alarms_pending == 1
        other_writer.close()
        await trio.sleep(5)
        assert len(journal.alarms) == 1
        assert directory.statistics().alarms_pending == 0
