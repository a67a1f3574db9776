"""A scriptable actor the runtime tests share: it records what happens to it in a journal that outlives
every instance, and runs messages that are async functions of the actor."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import trio.testing

from actors import Actor, ActorContext, ActorDirectory, ActorLimits, open_directory

Script = Callable[["ScriptedActor"], Awaitable[Any]]


@dataclass
class Journal:
    """What happened to the actors of one test, across activations and directories."""

    activated: list[str] = field(default_factory=list)
    handled: list[tuple[str, Any]] = field(default_factory=list)
    alarms: list[tuple[str, float]] = field(default_factory=list)
    shutdowns: list[tuple[str, str]] = field(default_factory=list)
    instances: list[ScriptedActor] = field(default_factory=list)
    on_activate: Script | None = None
    on_alarm: Script | None = None
    on_shutdown: Callable[[ScriptedActor, str], Awaitable[None]] | None = None

    def factory(self, ctx: ActorContext) -> ScriptedActor:
        actor = ScriptedActor(ctx, self)
        self.instances.append(actor)
        return actor


class ScriptedActor(Actor):
    """``on_message(fn)`` for a callable ``fn`` returns ``await fn(self)``; any other message is recorded
    and echoed."""

    def __init__(self, ctx: ActorContext, journal: Journal) -> None:
        super().__init__(ctx)
        self.journal = journal
        self.handling = False

    async def on_activate(self) -> None:
        self.journal.activated.append(self.name)
        if self.journal.on_activate is not None:
            await self.journal.on_activate(self)

    async def on_message(self, message: Any) -> Any:
        # One at a time: a second handler entering while one runs would be the bug these tests look for.
        assert not self.handling, "two handlers ran at the same time"
        self.handling = True
        try:
            if callable(message):
                return await message(self)
            self.journal.handled.append((self.name, message))
            await trio.lowlevel.checkpoint()
            return message
        finally:
            self.handling = False

    async def on_alarm(self) -> None:
        self.journal.alarms.append((self.name, trio.current_time()))
        if self.journal.on_alarm is not None:
            await self.journal.on_alarm(self)

    async def on_shutdown(self, reason: str) -> None:
        self.journal.shutdowns.append((self.name, reason))
        if self.journal.on_shutdown is not None:
            await self.journal.on_shutdown(self, reason)


@contextlib.asynccontextmanager
async def scripted_directory(
    data_dir: Path, journal: Journal, *, mock_clock: bool = True, **limits: Any
) -> AsyncIterator[ActorDirectory]:
    """A directory of :class:`ScriptedActor`; alarms run on trio's clock unless ``mock_clock`` is False."""
    async with open_directory(
        data_dir=data_dir,
        actor_factory=journal.factory,
        limits=ActorLimits(**limits),
        **({"clock": trio.current_time} if mock_clock else {}),
    ) as directory:
        yield directory


async def settled(directory: ActorDirectory, real_seconds: float = 10.0) -> None:
    """``trio.testing.wait_all_tasks_blocked()``, and also wait for the actors' worker threads, without
    moving a MockClock.

    A new session's file is created, and a stopping actor's store closed, in a worker thread. Trio counts
    a task waiting for a thread as blocked, so ``wait_all_tasks_blocked`` alone returns while an actor is
    still activating or its file still closing. Spinning on checkpoints keeps the loop busy, so the clock
    stands still; ``real_seconds`` bounds the wait in real time.
    """
    give_up = time.monotonic() + real_seconds
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if not _threads_busy(directory):
            return
        while _threads_busy(directory):
            if time.monotonic() > give_up:
                raise TimeoutError(f"worker threads still busy after {real_seconds} s")
            await trio.lowlevel.checkpoint()


def _threads_busy(directory: ActorDirectory) -> bool:
    return any(
        limiter.borrowed_tokens or limiter.statistics().tasks_waiting
        for limiter in (
            directory.opening_files,
            directory.closing_files,
            trio.to_thread.current_default_thread_limiter(),
        )
    )
