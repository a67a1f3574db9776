"""One live instance per id: activated on first use, once however many ask, reactivated from its file."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import Actor, DirectoryClosedError, id_from_name
from stores import SessionStore, file_for_name

from .support import Journal, ScriptedActor, scripted_directory


def test_actor_id_is_the_sha256_of_the_name_like_the_session_file() -> None:
    assert id_from_name("user-42/chat") == hashlib.sha256(b"user-42/chat").hexdigest()
    assert file_for_name(Path("/d"), "user-42/chat").stem == id_from_name("user-42/chat")


async def test_concurrent_first_requests_activate_the_actor_once(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async def slow_activation(actor: ScriptedActor) -> None:
        await trio.sleep(1)

    journal.on_activate = slow_activation
    got: list[Actor] = []

    async def get(directory: object) -> None:
        got.append(await directory.get("once"))  # type: ignore[attr-defined]

    async with scripted_directory(data_dir, journal) as directory:
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(get, directory)
        assert len(got) == 100 and all(actor is got[0] for actor in got)
        assert journal.activated == ["once"]
        assert directory.statistics().activations == 1
        assert directory.statistics().live_actors == 1


async def test_on_activate_finishes_before_any_message_is_handled(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    events: list[str] = []

    async def recover(actor: ScriptedActor) -> None:
        await trio.sleep(5)
        events.append("recovered")

    async def status(actor: ScriptedActor) -> None:
        events.append("status")

    journal.on_activate = recover
    async with scripted_directory(data_dir, journal) as directory:
        await directory.call("r", status)
    assert events == ["recovered", "status"]


async def test_failed_activation_reaches_every_waiter_and_leaves_nothing_live(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    failures = [RuntimeError("recovery failed")]

    async def fail_once(actor: ScriptedActor) -> None:
        await trio.sleep(1)
        if failures:
            raise failures.pop()

    journal.on_activate = fail_once
    errors: list[BaseException] = []

    async def call(directory: object) -> None:
        try:
            await directory.call("flaky", "hello")  # type: ignore[attr-defined]
        except RuntimeError as exc:
            errors.append(exc)

    async with scripted_directory(data_dir, journal) as directory:
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(call, directory)
            nursery.start_soon(call, directory)
        assert len(errors) == 11 and all(str(exc) == "recovery failed" for exc in errors)
        assert journal.handled == []
        stats = directory.statistics()
        assert (stats.live_actors, stats.activations, stats.activation_failures) == (0, 0, 1)
        assert not directory.is_live("flaky")
        SessionStore.open(file_for_name(data_dir, "flaky")).close()  # the store was closed: unlocked
        # Nothing sticks: the next request activates afresh.
        assert await directory.call("flaky", "again") == "again"
        assert directory.statistics().activations == 1


async def test_other_actors_keep_serving_while_a_new_sessions_file_is_created(
    data_dir: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating a file is file-system work that can stall (a slow disk, a new bucket directory): it runs
    in a worker thread, so the loop every live actor shares goes on meanwhile."""
    creating, may_finish = threading.Event(), threading.Event()
    events: list[str] = []
    open_store = SessionStore.open

    def open_slowly_if_new(path: Path, *, name: str | None = None) -> SessionStore:
        if not Path(path).exists():
            creating.set()
            may_finish.wait(timeout=5)  # bounded: a loop blocked here cannot set it
            events.append("new file created")
        return open_store(path, name=name)

    async def answer(actor: ScriptedActor) -> None:
        events.append("live actor answered")

    async with scripted_directory(data_dir, journal, mock_clock=False) as directory:
        await directory.get("live")
        monkeypatch.setattr(SessionStore, "open", staticmethod(open_slowly_if_new))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(directory.get, "new")
            assert await trio.to_thread.run_sync(creating.wait, 5)
            await directory.call("live", answer)
            may_finish.set()
        assert events == ["live actor answered", "new file created"]
        assert (await directory.get("new")).store.name == "new"


async def test_send_raises_the_activation_failure(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async def fail(actor: ScriptedActor) -> None:
        raise OSError("disk gone")

    journal.on_activate = fail
    async with scripted_directory(data_dir, journal) as directory:
        with pytest.raises(OSError, match="disk gone"):
            await directory.send("x", "hello")
        assert directory.statistics().live_actors == 0


async def test_first_activation_records_the_name_in_the_actor_file(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal) as directory:
        actor = await directory.get("session/with ../odd name")
        assert actor.actor_id == id_from_name("session/with ../odd name")
        assert actor.store.path == file_for_name(data_dir, "session/with ../odd name")
    with SessionStore.open(file_for_name(data_dir, "session/with ../odd name")) as store:
        assert store.name == "session/with ../odd name"


async def test_evicted_actor_is_rebuilt_from_its_file_on_next_use(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async def remember(actor: ScriptedActor) -> None:
        actor.store.set_meta("note", "kept")

    async def recall(actor: ScriptedActor) -> str | None:
        return actor.store.get_meta("note")

    async with scripted_directory(data_dir, journal) as directory:
        await directory.call("r", remember)
        first = journal.instances[-1]
        assert await directory.evict("r") is True
        assert not directory.is_live("r")
        assert await directory.call("r", recall) == "kept"
        assert journal.instances[-1] is not first
        assert directory.statistics().activations == 2


async def test_closed_directory_refuses_new_work(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal) as directory:
        pass
    with pytest.raises(DirectoryClosedError):
        await directory.call("late", "hello")
    with pytest.raises(DirectoryClosedError):
        await directory.get("late")
