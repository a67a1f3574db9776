"""One actor handles its messages one at a time, in arrival order; a failing message fails alone."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actors import ActorStoppedError

from .support import Journal, ScriptedActor, scripted_directory, settled


@pytest.mark.parametrize("mailbox_size", [1024, 8])
async def test_a_thousand_concurrent_messages_are_handled_one_at_a_time_in_arrival_order(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal, mailbox_size: int
) -> None:
    arrivals: list[int] = []

    async def sender(directory: Any, i: int) -> None:
        arrivals.append(i)  # recorded in the same scheduling step as the enqueue: this is arrival order
        assert await directory.call("counter", i) == i

    async with scripted_directory(data_dir, journal, mailbox_size=mailbox_size) as directory:
        async with trio.open_nursery() as nursery:
            for i in range(1000):
                nursery.start_soon(sender, directory, i)
        # The first message arrived before the actor was live: order holds across activation too.
        assert journal.activated == ["counter"]
        assert [message for _, message in journal.handled] == arrivals
        assert sorted(arrivals) == list(range(1000))
        assert directory.statistics().mailbox_depth == 0


async def test_handler_exception_fails_only_that_message_and_the_actor_keeps_serving(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(actor: ScriptedActor) -> None:
        raise ValueError("bad input")

    async with scripted_directory(data_dir, journal) as directory:
        assert await directory.call("a", "before") == "before"
        with pytest.raises(ValueError, match="bad input"):
            await directory.call("a", explode)
        with caplog.at_level(logging.ERROR, logger="actors"):
            await directory.send("a", explode)  # fire and forget: logged, not raised
            assert await directory.call("a", "after") == "after"
        assert "bad input" in caplog.text
        assert journal.handled == [("a", "before"), ("a", "after")]
        assert len(journal.instances) == 1  # the same instance kept serving
        assert directory.statistics().activations == 1


async def test_control_message_is_handled_while_a_spawned_task_runs(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    scope = trio.CancelScope()
    outcome: list[str] = []

    async def long_run() -> None:
        with scope:
            await trio.sleep(3600)
            outcome.append("finished")
        if scope.cancelled_caught:
            outcome.append("interrupted")

    async def start(actor: ScriptedActor) -> bool:
        actor.spawn(long_run, name="run")
        return actor.busy

    async def interrupt(actor: ScriptedActor) -> bool:
        running = actor.busy and not outcome
        scope.cancel(reason="interrupt: user")
        return running

    async with scripted_directory(data_dir, journal) as directory:
        assert await directory.call("s", start) is True
        await trio.sleep(10)
        assert directory.statistics().busy_actors == 1
        assert await directory.call("s", "status") == "status"  # served while the run runs
        assert await directory.call("s", interrupt) is True
        await settled(directory)
        assert outcome == ["interrupted"]
        assert directory.statistics().busy_actors == 0


async def test_full_mailbox_makes_senders_wait_and_keeps_their_order(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    release = trio.Event()
    sent: list[int] = []

    async def blocker(actor: ScriptedActor) -> None:
        await release.wait()

    async def send(directory: Any, i: int) -> None:
        await directory.send("m", i)
        sent.append(i)

    async with scripted_directory(data_dir, journal, mailbox_size=2) as directory:
        await directory.send("m", blocker)
        await settled(directory)  # the blocker is being handled
        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(send, directory, i)
                await settled(directory)
            assert sent == [0, 1]  # two fit; the other two wait for room
            assert directory.statistics().mailbox_depth == 1 + 2 + 2
            release.set()
        await directory.call("m", "flush")
        assert [message for _, message in journal.handled] == [0, 1, 2, 3, "flush"]


async def test_spawned_task_that_raises_is_logged_and_the_actor_keeps_serving(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash() -> None:
        raise RuntimeError("task blew up")

    async def spawn_crash(actor: ScriptedActor) -> None:
        actor.spawn(crash)

    async with scripted_directory(data_dir, journal) as directory:
        with caplog.at_level(logging.ERROR, logger="actors"):
            await directory.call("t", spawn_crash)
            await settled(directory)
        assert "task blew up" in caplog.text
        assert await directory.call("t", "still here") == "still here"
        assert directory.statistics().busy_actors == 0


async def test_messages_queued_when_the_directory_shuts_down_fail_with_actor_stopped(
    autojump_clock: trio.testing.MockClock, data_dir: Path, journal: Journal
) -> None:
    release = trio.Event()
    results: dict[int, Any] = {}

    async def slow(actor: ScriptedActor) -> str:
        await release.wait()
        return "slow done"

    async def caller(directory: Any, i: int, message: Any) -> None:
        try:
            results[i] = await directory.call("q", message)
        except ActorStoppedError as exc:
            results[i] = exc

    async def release_soon() -> None:
        await trio.sleep(1)
        release.set()

    async with trio.open_nursery() as outer:
        async with scripted_directory(data_dir, journal) as directory:
            outer.start_soon(caller, directory, 0, slow)
            await settled(directory)
            outer.start_soon(caller, directory, 1, "queued")
            await settled(directory)
            outer.start_soon(release_soon)
    assert results[0] == "slow done"  # the message being handled got to finish within the grace period
    assert isinstance(results[1], ActorStoppedError) and results[1].reason == "shutdown"
    assert journal.handled == []
