"""Idle actors leave memory (idle timeout, live-actor cap); busy or attached ones stay."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import ActorDirectory
from stores import SessionStore, file_for_name

from .support import Journal, ScriptedActor, scripted_directory, settled


async def test_idle_actor_is_evicted_after_idle_timeout_and_not_before(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, idle_timeout=60.0) as directory:
        start = trio.current_time()
        await directory.call("idle", "hello")
        actor_ref = weakref.ref(journal.instances.pop())
        await trio.sleep_until(start + 59.9)
        assert directory.is_live("idle")
        await trio.sleep_until(start + 61.0)
        assert not directory.is_live("idle")
        await settled(directory)
        stats = directory.statistics()
        assert (stats.live_actors, stats.hibernated_actors, stats.evictions) == (0, 1, 1)
        assert journal.shutdowns == [("idle", "idle")]
        SessionStore.open(file_for_name(data_dir, "idle")).close()  # the store is closed: unlocked
        gc.collect()
        assert actor_ref() is None  # nothing keeps the evicted actor in memory


async def test_each_message_restarts_the_idle_timer(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, idle_timeout=60.0) as directory:
        start = trio.current_time()
        await directory.call("a", 1)
        await trio.sleep_until(start + 50)
        await directory.call("a", 2)
        await trio.sleep_until(start + 100)
        assert directory.is_live("a")
        await trio.sleep_until(start + 111)
        assert not directory.is_live("a")


async def _use(directory: ActorDirectory, *names: str) -> None:
    for name in names:
        await directory.call(name, "ping")
        await trio.sleep(1)


async def test_live_actor_cap_evicts_the_least_recently_used_idle_actor_first(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, max_live_actors=3) as directory:
        await _use(directory, "a", "b", "c", "a")  # b is now the least recently used
        await _use(directory, "d")
        await settled(directory)
        assert [n for n in "abcd" if directory.is_live(n)] == ["a", "c", "d"]
        (await directory.get("c")).touch()
        await _use(directory, "e")
        await settled(directory)
        assert [n for n in "abcde" if directory.is_live(n)] == ["c", "d", "e"]
        assert journal.shutdowns == [("b", "lru"), ("a", "lru")]
        assert directory.statistics().evictions == 2


async def test_busy_actor_is_never_evicted(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    done = trio.Event()

    async def work() -> None:
        await done.wait()

    async def start_work(actor: ScriptedActor) -> None:
        actor.spawn(work)

    async with scripted_directory(data_dir, journal, idle_timeout=10.0, max_live_actors=1) as directory:
        await directory.call("busy", start_work)
        await trio.sleep(1000)
        assert directory.is_live("busy")
        assert await directory.evict("busy") is False
        await _use(directory, "other")  # the cap is 1, but the busy actor cannot go: the cap is exceeded
        assert directory.is_live("busy") and directory.is_live("other")
        finished = trio.current_time()
        done.set()
        await trio.sleep(9)
        assert directory.is_live("busy")
        await trio.sleep_until(finished + 11)
        assert not directory.is_live("busy")


async def test_attached_actor_is_not_evicted_for_being_idle(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, idle_timeout=10.0) as directory:
        with directory.attach("watched"):
            await directory.call("watched", "hello")
            await trio.sleep(1000)
            assert directory.is_live("watched")
            assert directory.statistics().attached_clients == 1
            detached = trio.current_time()
        await trio.sleep(9)
        assert directory.is_live("watched")
        await trio.sleep_until(detached + 11)
        assert not directory.is_live("watched")
        assert directory.statistics().attached_clients == 0


async def test_attachment_survives_eviction_and_does_not_activate(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, idle_timeout=10.0) as directory:
        with directory.attach("ws"):
            assert not directory.is_live("ws") and journal.activated == []
            await directory.call("ws", "hello")
            assert await directory.evict("ws") is True  # an admin eviction ignores clients
            assert directory.statistics().attached_clients == 1
            await directory.call("ws", "again")  # reactivated when needed; the client never left
            assert directory.statistics().attached_clients == 1


async def test_live_actor_cap_takes_unattached_idle_actors_before_attached_ones(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, max_live_actors=2) as directory:
        with directory.attach("old-but-attached"):
            await _use(directory, "old-but-attached", "newer")
            await _use(directory, "newest")
            await settled(directory)
            assert directory.is_live("old-but-attached") and not directory.is_live("newer")
            with directory.attach("newest"):
                await _use(directory, "another")  # every live actor is attached: the LRU one goes
                await settled(directory)
                assert not directory.is_live("old-but-attached") and directory.is_live("newest")


async def test_hibernated_count_includes_files_found_at_boot(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal) as directory:
        for name in ("a", "b", "c"):
            await directory.call(name, "hello")
        assert directory.statistics().hibernated_actors == 0
    async with scripted_directory(data_dir, journal) as directory:
        assert directory.statistics().hibernated_actors == 3
        await directory.call("a", "hello")
        await directory.call("new", "hello")
        stats = directory.statistics()
        assert (stats.live_actors, stats.hibernated_actors) == (2, 2)


async def test_eviction_commits_queued_gate_writes_before_closing_the_store(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    delivered: list[list[str]] = []

    async def farewell(actor: ScriptedActor, reason: str) -> None:
        actor.gate.set_deliver(delivered.append)

        def write(store: SessionStore) -> list[str]:
            store.set_meta("farewell", reason)
            return [reason]

        actor.gate.write(write)  # queued as the actor stops: the final flush commits it

    journal.on_shutdown = farewell
    async with scripted_directory(data_dir, journal, idle_timeout=10.0) as directory:
        await directory.call("leaving", "hello")
        await trio.sleep(11)
        assert not directory.is_live("leaving")
    assert delivered == [["idle"]]
    with SessionStore.open(file_for_name(data_dir, "leaving")) as store:
        assert store.get_meta("farewell") == "idle"


async def test_message_for_an_actor_whose_file_is_closing_reactivates_it_after_the_close(
    data_dir: Path, journal: Journal
) -> None:
    # Real clock: the store of an evicted actor closes in a worker thread, and messages that arrive
    # meanwhile must wait for the file to be unlocked, then reach a new activation in order.
    async with scripted_directory(data_dir, journal, mock_clock=False) as directory:
        for round_ in range(20):
            name = f"busy-{round_ % 4}"
            await directory.call(name, "before")
            evicted: list[bool] = []

            async def evict(name: str, evicted: list[bool]) -> None:
                evicted.append(await directory.evict(name))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(evict, name, evicted)
                await trio.testing.wait_all_tasks_blocked()  # the host is stopping: its file is closing
                assert not directory.is_live(name)
                assert await directory.call(name, "after") == "after"
            assert evicted == [True]
            assert directory.is_live(name)
        stats = directory.statistics()
        assert stats.activation_failures == 0
        assert stats.activations == 4 + 20  # four first activations, then one after each eviction
    assert [m for _, m in journal.handled] == ["before", "after"] * 20


async def test_hibernating_actors_close_their_files_one_at_a_time_and_shutdown_closes_the_rest(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A close ends in fsyncs; many at once slowed every session still streaming. Count the closes that
    # overlap, each made slow enough (in its worker thread) that unlimited ones would.
    lock = threading.Lock()
    closing, most_at_once = [0], [0]
    real_close = SessionStore.close

    def slow_close(store: SessionStore) -> None:
        with lock:
            closing[0] += 1
            most_at_once[0] = max(most_at_once[0], closing[0])
        time.sleep(0.01)
        real_close(store)
        with lock:
            closing[0] -= 1

    monkeypatch.setattr(SessionStore, "close", slow_close)
    async with scripted_directory(data_dir, journal, idle_timeout=60.0) as directory:
        for i in range(6):
            await directory.call(f"idle-{i}", "hello")
        await trio.sleep(61)  # all six go idle together and hibernate in one sweep
        await settled(directory)
        assert directory.statistics().hibernated_actors == 6
        assert most_at_once == [1]
        for i in range(6):
            await directory.call(f"busy-{i}", "hello")
    assert closing == [0]  # shutdown waited for every close
    for name in [f"{kind}-{i}" for kind in ("idle", "busy") for i in range(6)]:
        with SessionStore.open(file_for_name(data_dir, name)) as store:  # opens: the lock was released
            assert store.name == name
