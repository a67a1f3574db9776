"""The life of one live actor: activation, the mailbox loop, spawned tasks, and the graceful stop.

A host is created by the directory on the first request for an id and runs as one task in the
directory's nursery. That task opens the store, constructs the actor, starts the gate flusher, awaits
``on_activate``, then handles the mailbox one envelope at a time until a stop is requested. The actor's
spawned tasks and its gate flusher run in a nursery owned by that task, so nothing outlives the host.

States: ``ACTIVATING -> LIVE -> STOPPING -> STOPPED``, or ``ACTIVATING -> STOPPED`` when activation fails.
Messages may be queued from the moment the host exists (so arrival order holds across activation); they
are handled only once ``on_activate`` has returned.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from stores import SessionStore

from .actor import Actor, ActorContext
from .errors import ActorStoppedError
from .ids import ActorId
from .mailbox import Envelope, Mailbox

if TYPE_CHECKING:
    from .directory import ActorDirectory

logger = logging.getLogger("actors")


class HostState(enum.Enum):
    ACTIVATING = "activating"
    LIVE = "live"
    STOPPING = "stopping"
    STOPPED = "stopped"


class AlarmDue:
    """The mailbox message that runs ``on_alarm``; a private class, so no user message can look like it."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class AlarmOutcome(enum.Enum):
    FIRED = "fired"  # on_alarm returned
    CLEARED = "cleared"  # the file holds no alarm any more: nothing to do


class AlarmLater:
    """The file's alarm is in the future (the index was stale): arm it for ``at`` instead."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class HostOwner(Protocol):
    """What a host reports to, and asks of, its directory."""

    clock: Callable[[], float]
    closing_files: trio.CapacityLimiter  # worker threads the hosts' store closes may use at once
    opening_files: trio.CapacityLimiter  # worker threads creating new session files may use at once

    def host_store_opened(self, host: ActorHost, *, created: bool) -> None: ...
    def host_activated(self, host: ActorHost) -> None: ...
    def host_activation_failed(self, host: ActorHost) -> None: ...
    def host_idle(self, host: ActorHost) -> None: ...
    def host_stopped(self, host: ActorHost) -> None: ...
    def set_alarm(self, host: ActorHost, at: float | None) -> None: ...


class ActorHost:
    """One live (or activating, or stopping) actor and the task that runs it."""

    def __init__(
        self,
        *,
        owner: HostOwner,
        directory: ActorDirectory,
        actor_id: ActorId,
        name: str,
        path: Path,
        factory: Callable[[ActorContext], Actor],
        mailbox_size: int,
    ) -> None:
        self.actor_id = actor_id
        self.name = name
        self.path = path
        self.state = HostState.ACTIVATING
        self.mailbox = Mailbox(mailbox_size)
        self.actor: Actor | None = None
        self.store: SessionStore | None = None
        self.failure: BaseException | None = None
        """Why activation failed; raised to everyone who waited for it."""
        self.stop_reason: str | None = None
        self.store_opened = False
        self.activated = trio.Event()
        """Set when activation has succeeded or failed (or the host stopped before it finished)."""
        self.stopped = trio.Event()
        self._owner = owner
        self._directory = directory
        self._factory = factory
        self._nursery: trio.Nursery | None = None
        self._spawned = 0
        self._no_tasks = trio.Event()
        self._no_tasks.set()
        # Entered once the actor serves; its deadline becomes "now + grace" when a stop is requested, so
        # the message being handled, on_shutdown and spawned tasks together get the grace period.
        self._serve_scope = trio.CancelScope()

    # -- what the actor and the directory see -----------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._spawned > 0 or self.mailbox.depth > 0

    def spawn(self, async_fn: Callable[[], Awaitable[object]], name: str) -> None:
        if self._nursery is None or self.state is HostState.STOPPED:
            raise ActorStoppedError(self.name, self.stop_reason or "not running")
        self._spawned += 1
        if self._spawned == 1:
            self._no_tasks = trio.Event()
        self._nursery.start_soon(self._run_spawned, async_fn, name=f"actor {self.name!r}: {name}")

    def set_alarm(self, at: float | None) -> None:
        if self.store is None or self.state is HostState.STOPPED:
            raise ActorStoppedError(self.name, self.stop_reason or "not running")
        self._owner.set_alarm(self, at)

    def touch(self) -> None:
        if self.state is HostState.LIVE and not self.busy:
            self._owner.host_idle(self)

    def request_stop(self, reason: str, *, grace: float) -> None:
        """Begin a graceful stop. Queued (unhandled) messages fail with :class:`ActorStoppedError`; the
        message being handled, ``on_shutdown`` and spawned tasks get ``grace`` seconds together, then
        whatever still runs is cancelled. Returns at once; ``stopped`` is set when the store is closed."""
        if self.stop_reason is not None or self.state is HostState.STOPPED:
            return
        self.stop_reason = reason
        if self.state is HostState.LIVE:
            self.state = HostState.STOPPING
        self._reject(self.mailbox.close(), ActorStoppedError(self.name, reason))
        self._serve_scope.deadline = trio.current_time() + grace

    # -- the host task ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The actor's whole life. Runs in the directory nursery; raises nothing but cancellation."""
        try:
            try:
                created = not self.path.exists()
                if created:
                    # A new session's file is created in a worker thread: the file, its WAL and often its
                    # bucket directory are file-system metadata work (0.4-0.55 ms here) during which every
                    # other session on the loop would wait, against ~0.05 ms of loop time for the hop.
                    # An existing file (~0.3 ms to open) opens here: cold activation latency is what a
                    # returning user feels, and a hop adds ~0.1 ms to it.
                    store = await trio.to_thread.run_sync(
                        functools.partial(SessionStore.open, self.path, name=self.name),
                        limiter=self._owner.opening_files,
                    )
                else:
                    store = SessionStore.open(self.path, name=self.name)
            except Exception as exc:
                self._activation_failed(exc)
                return
            self.store = store
            self.store_opened = True
            self._owner.host_store_opened(self, created=created)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                with self._serve_scope:
                    if await self._activate(store, nursery):
                        await self._serve_mailbox()
                        await self._shut_down()
                if self.state is HostState.ACTIVATING:
                    if self.failure is None:  # the stop's grace period ran out inside on_activate
                        self._activation_failed(ActorStoppedError(self.name, self.stop_reason or "stopped"))
                    reason = f"actor {self.name!r}: activation failed"
                else:
                    if self._serve_scope.cancelled_caught:
                        logger.warning("actor %r: grace period over while stopping (%s); cancelling its work",
                                       self.name, self.stop_reason)
                    reason = f"actor {self.name!r} stopping: {self.stop_reason}"
                # Whatever still runs (spawned tasks past the grace period, the gate flusher) ends here.
                nursery.cancel_scope.cancel(reason=reason)
        except Exception:
            # A bug in the runtime or an actor hook escaping its guard: stop this actor, keep the others.
            logger.exception("actor %r crashed; stopping it", self.name)
        finally:
            await self._finish()

    async def _activate(self, store: SessionStore, nursery: trio.Nursery) -> bool:
        try:
            if store.name != self.name:
                store.set_name(self.name)
            context = ActorContext(
                actor_id=self.actor_id, name=self.name, store=store, directory=self._directory, runtime=self
            )
            actor = self._factory(context)
            self.actor = actor
            nursery.start_soon(actor.gate.serve, name=f"actor {self.name!r}: gate flusher")
            await actor.on_activate()
        except Exception as exc:
            self._activation_failed(exc)
            return False
        if self.stop_reason is None:
            self.state = HostState.LIVE
        else:
            self.state = HostState.STOPPING
        self.activated.set()
        self._owner.host_activated(self)
        if self.state is HostState.LIVE and not self.busy:
            self._owner.host_idle(self)
        return True

    async def _serve_mailbox(self) -> None:
        actor = self.actor
        assert actor is not None
        while True:
            envelope = await self.mailbox.get()
            if envelope is None:
                return
            self.mailbox.handling = True
            try:
                await self._handle(actor, envelope)
            finally:
                self.mailbox.handling = False
            if self.state is HostState.LIVE and not self.busy:
                self._owner.host_idle(self)

    async def _handle(self, actor: Actor, envelope: Envelope) -> None:
        reply = envelope.reply
        try:
            if isinstance(envelope.message, AlarmDue):
                result: Any = await self._run_alarm(actor)
            else:
                result = await actor.on_message(envelope.message)
        except Exception as exc:
            if reply is None:
                logger.error("actor %r: handling %s raised", self.name, type(envelope.message).__name__,
                             exc_info=exc)
            else:
                reply.set_error(exc)
            return
        except BaseException:
            # Cancelled: the stop's grace period ran out mid-handler.
            if reply is not None:
                reply.set_error(ActorStoppedError(self.name, self.stop_reason or "cancelled"))
            raise
        if reply is not None:
            reply.set_result(result)

    async def _run_alarm(self, actor: Actor) -> AlarmOutcome | AlarmLater:
        # The file is the truth about the alarm; the directory's index may be stale after a crash.
        store = actor.store
        due = store.get_alarm()
        if due is None:
            return AlarmOutcome.CLEARED
        if due > self._owner.clock():
            return AlarmLater(due)
        await actor.on_alarm()
        if store.get_alarm() == due:  # on_alarm did not set a new one
            store.set_alarm(None)
        return AlarmOutcome.FIRED

    async def _shut_down(self) -> None:
        actor = self.actor
        assert actor is not None and self.stop_reason is not None
        try:
            await actor.on_shutdown(self.stop_reason)
        except Exception:
            logger.exception("actor %r: on_shutdown raised; stopping anyway", self.name)
        await self._no_tasks.wait()

    async def _run_spawned(self, async_fn: Callable[[], Awaitable[object]]) -> None:
        try:
            await async_fn()
        except Exception:
            logger.exception("actor %r: a spawned task raised; the actor keeps serving", self.name)
        finally:
            self._spawned -= 1
            if self._spawned == 0:
                self._no_tasks.set()
                if self.state is HostState.LIVE and not self.busy:
                    self._owner.host_idle(self)

    # -- endings ---------------------------------------------------------------------------------

    def _activation_failed(self, exc: BaseException) -> None:
        self.failure = exc
        self._owner.host_activation_failed(self)

    def _reject(self, envelopes: list[Envelope], error: BaseException) -> None:
        for envelope in envelopes:
            if envelope.reply is not None:
                envelope.reply.set_error(error)

    async def _finish(self) -> None:
        """Final flush, close the store, fail whatever still waits, and let go of the actor.

        The store closes in a worker thread: closing folds the WAL into the file with two fsyncs (about
        6 ms for a session that streamed 900 chunks), and a reaper that hibernates a few hundred sessions
        at once would otherwise stall every other session for as long (``bench/rest.py``,
        ``mass_hibernation``). The closes share the directory's ``closing_files`` limiter, one at a time
        while serving: each ends in fsyncs, and dozens of them at once also slowed the commits of the
        sessions still streaming. The file stays locked until the close is done, so a new activation of
        this session waits for ``stopped`` as before. Runs shielded (the directory runs hosts shielded); a
        worker thread cannot be cancelled anyway."""
        actor, store = self.actor, self.store
        try:
            if actor is not None:
                actor.gate.close()
        finally:
            if store is not None:
                await trio.to_thread.run_sync(store.close, limiter=self._owner.closing_files)
        if self.state is HostState.ACTIVATING and self.failure is None:
            self.failure = ActorStoppedError(self.name, self.stop_reason or "cancelled during activation")
        error = self.failure or ActorStoppedError(self.name, self.stop_reason or "stopped")
        self._reject(self.mailbox.close(), error)
        self.state = HostState.STOPPED
        # Drop references so the actor (and everything it holds) can be garbage-collected.
        self.actor = None
        self.store = None
        self._nursery = None
        self.activated.set()
        self.stopped.set()
        self._owner.host_stopped(self)
