"""The actor base class: what a subclass overrides (the ``on_*`` hooks) and what it may call.

The directory constructs one instance per live id, ``ActorSubclass(ctx)``, after opening the actor's
store and before any message reaches it; the instance is dropped when the actor is evicted or the
directory shuts down, and a later request builds a new one from the file.

Everything an actor does to its state and store happens in its hooks, which the directory runs one at a
time: ``on_activate`` first, then ``on_message``/``on_alarm`` in arrival order, then ``on_shutdown``.
Long work runs in tasks started with :meth:`Actor.spawn`; messages keep being handled while they run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, Unpack

from stores import SessionStore

from .gate import OutputGate
from .ids import ActorId

if TYPE_CHECKING:
    from .directory import ActorDirectory

logger = logging.getLogger("actors")

# A gate write with no commit in the last millisecond is not part of a burst: it commits at once instead
# of waiting a scheduling round for the flusher (actors/gate.py).
EAGER_COMMIT_AFTER_SECONDS = 0.001

PosArgs = TypeVarTuple("PosArgs")


class ActorRuntime(Protocol):
    """What the directory provides to one live actor (implemented by its host)."""

    @property
    def busy(self) -> bool:
        """Messages queued or being handled, or spawned tasks running."""

    def spawn(self, async_fn: Callable[[], Awaitable[object]], name: str) -> None:
        """Start ``async_fn()`` in the actor's nursery. Raises ``ActorStoppedError`` once stopped."""

    def set_alarm(self, at: float | None) -> None:
        """Persist and arm (or clear) the actor's alarm."""

    def touch(self) -> None:
        """Mark the actor used now."""


class ActorContext:
    """What an actor is constructed with. Built by the directory, one per activation."""

    __slots__ = ("_runtime", "actor_id", "directory", "name", "store")

    def __init__(
        self,
        *,
        actor_id: ActorId,
        name: str,
        store: SessionStore,
        directory: ActorDirectory,
        runtime: ActorRuntime,
    ) -> None:
        self.actor_id = actor_id
        """``id_from_name(name)``."""
        self.name = name
        """The name the actor was asked for by (recorded in its store on first activation)."""
        self.store = store
        """The actor's open store; the actor is its only writer while live."""
        self.directory = directory
        """The directory the actor lives in, for messaging other actors. Never ``call`` yourself: the
        answer would wait behind the handler that is waiting for it."""
        self._runtime = runtime


class Actor:
    """Base class of actors. Override the ``on_*`` hooks; the defaults do nothing (``on_message`` raises).

    Attributes: ``actor_id``, ``name``, ``store`` (open while the actor is live), ``directory``, and
    ``gate``, an eager :class:`OutputGate` over ``store`` (a lone write commits at once) whose flusher the
    directory runs while the actor is live and flushes one last time before the store closes.
    """

    def __init__(self, ctx: ActorContext) -> None:
        self.actor_id: ActorId = ctx.actor_id
        self.name: str = ctx.name
        self.store: SessionStore = ctx.store
        self.directory: ActorDirectory = ctx.directory
        self.gate: OutputGate[Any] = OutputGate(
            ctx.store, on_error=self.on_gate_error, eager_after=EAGER_COMMIT_AFTER_SECONDS
        )
        self._actor_runtime = ctx._runtime

    # -- hooks -----------------------------------------------------------------------------------

    async def on_activate(self) -> None:
        """Called once, after the store is open and before any message or alarm is handled. An exception
        fails the activation: every caller waiting for it gets the exception, and the store is closed."""

    async def on_message(self, message: Any) -> Any:
        """Handle one message; messages are handled one at a time, in arrival order. The return value goes
        to the caller of ``call()``; an exception goes to that caller (or to the log, for ``send()``) and
        fails only this message."""
        raise TypeError(f"{type(self).__name__} handles no messages; override on_message")

    async def on_alarm(self) -> None:
        """The alarm set with :meth:`set_alarm` is due. Runs through the mailbox, serialized with messages.
        The alarm is cleared only after this returns (unless it set a new one); if it raises, it is retried
        with exponential backoff, so it may run more than once for one alarm (at-least-once)."""

    async def on_shutdown(self, reason: str) -> None:
        """The actor is stopping: ``reason`` is ``"shutdown"`` (the directory is closing), ``"idle"``,
        ``"lru"`` or ``"evict"`` (eviction; an evicted actor has no queued messages and no spawned tasks).
        Runs after the last message was handled and before the final gate flush and the store's close.
        Stop spawned work here and wait for it to reach a safe point: after ``shutdown_grace`` seconds
        (counted from the stop request) whatever still runs is cancelled. An exception is logged."""

    def on_gate_error(self, error: BaseException) -> None:
        """A batch of fire-and-forget gate writes failed and rolled back. The default logs it; the next
        ``gate.commit()``/``gate.flush()`` raises it as well."""
        logger.error("actor %r: output gate writes failed and rolled back", self.name, exc_info=error)

    # -- services --------------------------------------------------------------------------------

    def spawn(
        self,
        async_fn: Callable[[Unpack[PosArgs]], Awaitable[object]],
        *args: *PosArgs,
        name: str | None = None,
    ) -> None:
        """Start ``async_fn(*args)`` as a task owned by this actor. The actor is busy (never evicted) while
        any such task runs, and messages are still handled meanwhile. An exception the task raises is
        logged, and the actor keeps serving. On shutdown, a task still running ``shutdown_grace`` seconds
        after the stop request is cancelled. Raises ``ActorStoppedError`` once the actor has stopped."""

        async def task() -> None:
            await async_fn(*args)

        label = name if name is not None else str(getattr(async_fn, "__qualname__", repr(async_fn)))
        self._actor_runtime.spawn(task, label)

    @property
    def busy(self) -> bool:
        """True while messages are queued or being handled or spawned tasks run."""
        return self._actor_runtime.busy

    def set_alarm(self, at: float | None) -> None:
        """Wake this actor (``on_alarm``) at ``at``, epoch seconds by the directory's clock; ``None`` clears
        it. One alarm per actor: setting replaces. The time is stored in the actor's file and in the
        directory's alarm index before this returns, so it survives eviction and restarts."""
        self._actor_runtime.set_alarm(at)

    def get_alarm(self) -> float | None:
        """The pending alarm time, if any (read from the store)."""
        return self.store.get_alarm()

    def touch(self) -> None:
        """Mark the actor as used now: restarts its idle timer and makes it most recently used."""
        self._actor_runtime.touch()
