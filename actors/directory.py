"""The actor directory: the one live instance per id in this process, and everything around it.

``open_directory`` opens a nursery that holds every actor's task, the idle reaper and the alarm loop. A
request for a name activates its actor if needed (once, however many ask at the same time), queues the
message in its mailbox and, for ``call``, waits for the handler's answer. Idle actors are evicted after
``idle_timeout`` or when the live-actor cap needs room; their files stay on disk (hibernated) and the next
request reactivates them. Alarms are indexed in ``<data_dir>/alarms.sqlite3`` and re-armed at boot.

Ownership across processes comes from the store: an activation in a second process fails with
``stores.SessionLockedError`` while this one holds the file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trio

from stores import file_for_id

from .actor import Actor, ActorContext
from .alarms import INDEX_FILE_NAME, AlarmIndex, AlarmSchedule, ArmedAlarm
from .config import ActorLimits
from .errors import ActorError, DirectoryClosedError
from .hibernation import Evictable, IdleTracker, count_session_files
from .host import ActorHost, AlarmDue, AlarmLater, AlarmOutcome, HostState
from .ids import ActorId, id_from_name
from .mailbox import Envelope, MailboxClosedError, Reply
from .stats import DirectoryStatistics

# Hibernating stores close in worker threads (ActorHost._finish), one at a time while serving: 200 closes
# at once (each ending in fsyncs) stalled the streaming sessions' commits and the loop for up to 16 ms, one
# at a time for under 3 ms (bench/rest.py --phase hibernation). At shutdown nothing else waits on them.
CLOSES_AT_ONCE_SERVING = 1
CLOSES_AT_ONCE_SHUTTING_DOWN = 16
# New session files are created in worker threads (ActorHost.run), up to eight at a time. With the loop
# busy, a creating thread waits for the GIL, so two at a time left the last of 200 sessions started at
# once waiting ~2 s for its file (0.8-0.95 s with 8, 16 or 40); throughput is the same from 2 to 40, and
# each idle thread is one more stack for py-spy to walk per sample (40 slowed `--profile` tenfold).
OPENS_AT_ONCE = 8

logger = logging.getLogger("actors")


@asynccontextmanager
async def open_directory(
    *,
    data_dir: Path,
    actor_factory: Callable[[ActorContext], Actor],
    limits: ActorLimits = ActorLimits(),  # noqa: B008 - frozen, so sharing the default is safe
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[ActorDirectory]:
    """Open a directory of actors stored under ``data_dir`` and serve them until the block exits.

    At boot it re-arms every alarm in the index and counts the session files on disk. On exit it shuts
    down gracefully: new requests fail with :class:`DirectoryClosedError`, queued messages fail with
    ``ActorStoppedError``, every live actor gets ``on_shutdown("shutdown")`` and ``shutdown_grace`` seconds
    for its running work to finish, then whatever still runs is cancelled, each gate is flushed and each
    store closed (so the files are unlocked when this returns). The shutdown is shielded from an outer
    cancellation, and is bounded by the grace period as long as cancelled work stops promptly.

    ``clock`` gives alarm times (epoch seconds by default); idle timeouts use trio's clock.
    """
    async with trio.open_nursery() as nursery:
        directory = ActorDirectory(
            data_dir=Path(data_dir), actor_factory=actor_factory, limits=limits, clock=clock, nursery=nursery
        )
        try:
            await directory._boot()
            yield directory
        finally:
            with trio.CancelScope(shield=True):
                await directory._shutdown()
            nursery.cancel_scope.cancel(reason="actor directory closed")


class ActorDirectory:
    """The live actors of one data directory. Create it with :func:`open_directory`."""

    def __init__(
        self,
        *,
        data_dir: Path,
        actor_factory: Callable[[ActorContext], Actor],
        limits: ActorLimits,
        clock: Callable[[], float],
        nursery: trio.Nursery,
    ) -> None:
        self.data_dir = data_dir
        self.limits = limits
        self.clock = clock
        self.closing_files = trio.CapacityLimiter(CLOSES_AT_ONCE_SERVING)
        self.opening_files = trio.CapacityLimiter(OPENS_AT_ONCE)
        self._factory = actor_factory
        self._nursery = nursery
        self._hosts: dict[ActorId, ActorHost] = {}
        self._serving = 0  # hosts not stopping: what the live-actor cap counts
        self._attached: dict[ActorId, int] = {}
        self._attached_total = 0
        self._closing = False
        self._idle = IdleTracker(
            idle_timeout=limits.idle_timeout, is_attached=self._is_attached, evict=self._evict
        )
        self._alarms = AlarmSchedule(
            clock=clock, retry_initial=limits.alarm_retry_initial, retry_max=limits.alarm_retry_max
        )
        self._alarm_index: AlarmIndex | None = None
        self._services: trio.CancelScope | None = None
        self._files_known = 0
        self._hosts_with_file = 0
        self._activations = 0
        self._activation_failures = 0
        self._evictions = 0
        self._alarms_fired = 0
        self._alarm_failures = 0

    # -- public API ------------------------------------------------------------------------------

    async def get(self, name: str) -> Actor:
        """The one live instance of the actor called ``name``, activating it first if needed: open its
        store at ``stores.file_for_id(data_dir, id)``, record the name in it, construct the actor, start its
        gate flusher and await ``on_activate``. Concurrent first requests share one activation.

        Raises what the activation raised, to every caller waiting for it (``stores.SessionLockedError``
        when another process owns the file; whatever ``on_activate`` raised), leaving nothing live and the
        store closed, so a later call tries again. Raises :class:`DirectoryClosedError` once shutting down.
        """
        await trio.lowlevel.checkpoint()
        while True:
            host = self._host_for(name)
            if host.state is HostState.LIVE:
                host.touch()
                assert host.actor is not None
                return host.actor
            if host.state is HostState.ACTIVATING:
                await host.activated.wait()
                if host.failure is not None:
                    raise host.failure
            else:
                await host.stopped.wait()

    async def call(self, name: str, message: Any) -> Any:
        """Queue ``message`` for the actor called ``name`` (activating it if needed) and return what its
        ``on_message`` returns. Waits while the mailbox is full.

        Raises what the handler raised (the actor keeps serving), what the activation raised (see
        :meth:`get`), ``ActorStoppedError`` if the directory shut down before the message was handled, or
        :class:`DirectoryClosedError`. If the caller is cancelled after the message was queued, the message
        is still handled; only its answer is dropped.
        """
        reply = Reply()
        await self._enqueue(name, Envelope(message, reply))
        return await reply.wait()

    async def send(self, name: str, message: Any) -> None:
        """Queue ``message`` for the actor called ``name`` without waiting for it to be handled; an
        exception from the handler is logged. Returns once the message is queued and the actor is active.

        Raises what the activation raised (see :meth:`get`; the message is then dropped) or
        :class:`DirectoryClosedError`.
        """
        host = await self._enqueue(name, Envelope(message, None))
        if host.state is HostState.ACTIVATING:
            await host.activated.wait()
            if host.failure is not None:
                raise host.failure

    @contextmanager
    def attach(self, name: str) -> Iterator[None]:
        """Count an attached client (a WebSocket, an SSE stream) for ``name`` while the block runs.

        The count is kept here, outside the actor: it survives eviction, and attaching neither activates the
        actor nor needs it live. While it is above zero the actor is not evicted for being idle; the
        live-actor cap may still evict it (it is not busy), but only after every unattached idle actor.
        Detaching the last client restarts the idle timer.
        """
        actor_id = id_from_name(name)
        self._attached[actor_id] = self._attached.get(actor_id, 0) + 1
        self._attached_total += 1
        try:
            yield
        finally:
            self._attached_total -= 1
            left = self._attached[actor_id] - 1
            if left:
                self._attached[actor_id] = left
            else:
                del self._attached[actor_id]
                host = self._hosts.get(actor_id)
                if host is not None:
                    host.touch()

    def is_live(self, name: str) -> bool:
        """Whether the actor called ``name`` is activated and serving in this process."""
        host = self._hosts.get(id_from_name(name))
        return host is not None and host.state is HostState.LIVE

    def is_activating(self, name: str) -> bool:
        """Whether the actor called ``name`` is being activated in this process (its file may not exist
        yet: a new session's file is created in a worker thread)."""
        host = self._hosts.get(id_from_name(name))
        return host is not None and host.state is HostState.ACTIVATING

    async def evict(self, name: str) -> bool:
        """Evict the actor called ``name`` now if it is live and not busy (attached clients do not prevent
        it); return once its store is closed. Returns whether it evicted. ``on_shutdown("evict")`` runs."""
        await trio.lowlevel.checkpoint()
        host = self._hosts.get(id_from_name(name))
        if host is None or host.state is not HostState.LIVE or host.busy:
            return False
        self._evict(host, "evict")
        await host.stopped.wait()
        return True

    def statistics(self) -> DirectoryStatistics:
        hosts = list(self._hosts.values())
        return DirectoryStatistics(
            live_actors=len(hosts),
            busy_actors=sum(1 for host in hosts if host.busy),
            hibernated_actors=max(0, self._files_known - self._hosts_with_file),
            activations=self._activations,
            activation_failures=self._activation_failures,
            evictions=self._evictions,
            mailbox_depth=sum(host.mailbox.depth for host in hosts),
            attached_clients=self._attached_total,
            alarms_pending=len(self._alarms),
            alarms_fired=self._alarms_fired,
            alarm_failures=self._alarm_failures,
        )

    # -- routing ---------------------------------------------------------------------------------

    def _host_for(self, name: str) -> ActorHost:
        """The host for ``name``, created (and its activation started) if there is none. Never yields."""
        if self._closing:
            raise DirectoryClosedError()
        actor_id = id_from_name(name)
        host = self._hosts.get(actor_id)
        if host is None:
            self._make_room()
            host = ActorHost(
                owner=self,
                directory=self,
                actor_id=actor_id,
                name=name,
                path=file_for_id(self.data_dir, actor_id),
                factory=self._factory,
                mailbox_size=self.limits.mailbox_size,
            )
            self._hosts[actor_id] = host
            self._serving += 1
            self._nursery.start_soon(self._run_host, host, name=f"actor {name!r}")
        return host

    async def _run_host(self, host: ActorHost) -> None:
        # Shielded: an actor stops only through request_stop, whose grace deadline bounds it; an outer
        # cancellation of the directory reaches the actors as the graceful shutdown in open_directory.
        with trio.CancelScope(shield=True):
            await host.run()

    async def _enqueue(self, name: str, envelope: Envelope) -> ActorHost:
        # No checkpoint before the envelope is queued: for a live actor with room, the order of
        # call()/send() invocations is exactly the order of handling.
        while True:
            host = self._host_for(name)
            if host.state is HostState.STOPPING:
                await host.stopped.wait()
                continue
            try:
                await host.mailbox.put(envelope)
            except MailboxClosedError:
                # The actor stopped (or failed to activate) while we waited for room.
                if host.failure is not None:
                    raise host.failure from None
                await host.stopped.wait()
                continue
            return host

    def _make_room(self) -> None:
        """Before an activation: evict least recently used idle actors so the live count stays within
        ``max_live_actors``. Busy actors are never evicted: if too few are idle, the cap is exceeded until
        some become idle (the reaper then takes them after ``idle_timeout`` as usual)."""
        excess = self._serving + 1 - self.limits.max_live_actors
        if excess > 0:
            for victim in self._idle.lru_victims(excess):
                self._evict(victim, "lru")

    def _is_attached(self, actor_id: ActorId) -> bool:
        return actor_id in self._attached

    def _evict(self, actor: Evictable, reason: str) -> None:
        host = self._hosts.get(actor.actor_id)
        if host is None or host is not actor:
            return
        self._evictions += 1
        self._stop(host, reason)

    def _stop(self, host: ActorHost, reason: str) -> None:
        if host.stop_reason is None:
            self._serving -= 1
        self._idle.forget(host)
        host.request_stop(reason, grace=self.limits.shutdown_grace)

    # -- host callbacks (HostOwner) -----------------------------------------------------------------

    def host_store_opened(self, host: ActorHost, *, created: bool) -> None:
        self._hosts_with_file += 1
        if created:
            self._files_known += 1
        assert host.store is not None
        # Repair a lost index row (a crash between the two writes of an older version, a copied file):
        # the file's alarm must be armed whenever the actor has been live once.
        at = host.store.get_alarm()
        if at is not None and self._alarms.get(host.actor_id) is None:
            self._arm(host.actor_id, host.name, at)

    def host_activated(self, host: ActorHost) -> None:
        self._activations += 1

    def host_activation_failed(self, host: ActorHost) -> None:
        self._activation_failures += 1
        logger.warning("actor %r: activation failed: %r", host.name, host.failure)

    def host_idle(self, host: ActorHost) -> None:
        if self._hosts.get(host.actor_id) is host and host.stop_reason is None:
            self._idle.mark_idle(host)

    def host_stopped(self, host: ActorHost) -> None:
        if host.store_opened:
            self._hosts_with_file -= 1
        if host.stop_reason is None:
            self._serving -= 1  # stopped without a request: failed activation or a crash
            host.stop_reason = "stopped"
        self._idle.forget(host)
        if self._hosts.get(host.actor_id) is host:
            del self._hosts[host.actor_id]

    def set_alarm(self, host: ActorHost, at: float | None) -> None:
        store = host.store
        assert store is not None and self._alarm_index is not None
        if at is None:
            store.set_alarm(None)  # file first: the index may hold more than the files, never less
            self._alarm_index.clear(host.actor_id)
            self._alarms.disarm(host.actor_id)
        else:
            self._arm(host.actor_id, host.name, float(at))
            store.set_alarm(float(at))

    # -- alarms ----------------------------------------------------------------------------------

    def _arm(self, actor_id: ActorId, name: str, at: float) -> None:
        assert self._alarm_index is not None
        self._alarm_index.set(actor_id, name, at)
        self._alarms.arm(actor_id, name, at)

    def _fire_alarm(self, alarm: ArmedAlarm) -> None:
        self._nursery.start_soon(self._deliver_alarm, alarm, name=f"alarm of {alarm.name!r}")

    async def _deliver_alarm(self, alarm: ArmedAlarm) -> None:
        """Run ``on_alarm`` through the actor's mailbox; clear the alarm only after it returned."""
        reply = Reply()
        try:
            await self._enqueue(alarm.name, Envelope(AlarmDue(alarm.at), reply))
            outcome = await reply.wait()
        except Exception as exc:
            if self._closing and isinstance(exc, ActorError):
                return  # shutting down: the alarm stays in the file and the index, and fires after restart
            self._alarm_failures += 1
            delay = self._alarms.retry(alarm.actor_id, alarm.generation)
            if delay is not None:
                logger.warning("alarm of actor %r failed (attempt %d); retrying in %g s",
                               alarm.name, alarm.attempts, delay, exc_info=exc)
            return
        if alarm is not self._alarms.get(alarm.actor_id):
            return  # set again meanwhile: the new alarm is armed and indexed already
        assert self._alarm_index is not None
        if isinstance(outcome, AlarmLater):
            self._arm(alarm.actor_id, alarm.name, outcome.at)
            return
        self._alarms.disarm(alarm.actor_id)
        self._alarm_index.clear(alarm.actor_id)
        if outcome is AlarmOutcome.FIRED:
            self._alarms_fired += 1

    # -- boot and shutdown -----------------------------------------------------------------------

    async def _boot(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        index = AlarmIndex(self.data_dir / INDEX_FILE_NAME)
        self._alarm_index = index
        for actor_id, name, at in index.pending():
            self._alarms.arm(actor_id, name, at)
        self._files_known = await trio.to_thread.run_sync(count_session_files, self.data_dir)
        self._services = trio.CancelScope()
        self._nursery.start_soon(self._run_services, self._services, name="actor directory services")

    async def _run_services(self, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as services:
                services.start_soon(self._idle.run, name="idle reaper")
                services.start_soon(self._alarms.run, self._fire_alarm, name="alarm loop")

    async def _shutdown(self) -> None:
        self._closing = True
        self.closing_files.total_tokens = CLOSES_AT_ONCE_SHUTTING_DOWN
        if self._services is not None:
            self._services.cancel(reason="actor directory shutting down")
        hosts = list(self._hosts.values())
        for host in hosts:
            self._stop(host, "shutdown")
        for host in hosts:
            await host.stopped.wait()
        if self._alarm_index is not None:
            self._alarm_index.close()
