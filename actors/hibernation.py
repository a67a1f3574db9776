"""Hibernation: which live actors are idle, which to evict when, and how many sessions rest on disk.

An actor is idle when it has no queued or running messages, no spawned tasks and no attached client. The
tracker keeps idle actors in the order they became idle (least recently used first) with the time they
did, so the next idle-timeout deadline is always the first entry's: the reaper sleeps until exactly then
and evicts at ``idle_timeout`` (well within the promised ``idle_timeout + 1`` s), waking for nothing else.

Entries are checked lazily: an actor that becomes busy or gets a client stays listed until the reaper (or
the LRU cap) reaches it, which then re-checks it. Every return to idle re-lists the actor at the end with
a fresh time, so a listed actor's time is never older than its last use.
"""

from __future__ import annotations

import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import trio

from .ids import ActorId

_SESSION_FILE = re.compile(r"[0-9a-f]{64}\.sqlite3")


class Evictable(Protocol):
    @property
    def actor_id(self) -> ActorId: ...
    @property
    def busy(self) -> bool: ...


class IdleTracker:
    """Idle live actors in least-recently-used order, and the reaper that evicts them on idle timeout."""

    def __init__(
        self,
        *,
        idle_timeout: float,
        is_attached: Callable[[ActorId], bool],
        evict: Callable[[Evictable, str], None],
    ) -> None:
        self._idle_timeout = idle_timeout
        self._is_attached = is_attached
        self._evict = evict
        # actor id -> (actor, trio time it became idle); oldest first.
        self._idle: OrderedDict[ActorId, tuple[Evictable, float]] = OrderedDict()
        # Idle but attached: exempt from the idle timeout, evicted by the LRU cap only after every
        # unattached idle actor. Oldest first.
        self._attached: OrderedDict[ActorId, Evictable] = OrderedDict()
        self._sleep: trio.CancelScope | None = None

    def mark_idle(self, actor: Evictable) -> None:
        """``actor`` is idle as of now (or was just used): list it as most recently used."""
        self._attached.pop(actor.actor_id, None)
        self._idle.pop(actor.actor_id, None)
        self._idle[actor.actor_id] = (actor, trio.current_time())
        self._reschedule()

    def forget(self, actor: Evictable) -> None:
        """``actor`` is stopping: never pick it again."""
        self._idle.pop(actor.actor_id, None)
        self._attached.pop(actor.actor_id, None)
        self._reschedule()

    def lru_victims(self, count: int) -> list[Evictable]:
        """Up to ``count`` idle actors to evict for the live-actor cap, least recently used first,
        unattached before attached. Busy actors are never picked."""
        victims: list[Evictable] = []
        for actor_id, (actor, _) in list(self._idle.items()):
            if len(victims) == count:
                break
            if actor.busy:
                del self._idle[actor_id]  # listed again when it next becomes idle
            elif self._is_attached(actor_id):
                self._park_attached(actor)
            else:
                victims.append(actor)
        for actor_id, actor in list(self._attached.items()):
            if len(victims) == count:
                break
            if actor.busy:
                del self._attached[actor_id]
            else:
                victims.append(actor)
        return victims

    async def run(self) -> None:
        """The reaper: evict each unattached actor that has been idle for ``idle_timeout``. Runs until
        cancelled."""
        while True:
            with trio.CancelScope(deadline=self._next_deadline()) as sleep:
                self._sleep = sleep
                await trio.sleep_forever()
            self._sleep = None
            self._reap(trio.current_time())

    # -- internals -------------------------------------------------------------------------------

    def _next_deadline(self) -> float:
        if not self._idle or math.isinf(self._idle_timeout):
            return math.inf
        _, since = next(iter(self._idle.values()))
        return since + self._idle_timeout

    def _reschedule(self) -> None:
        if self._sleep is not None:
            deadline = self._next_deadline()
            # Only when it changes: each change costs an entry in trio's deadline heap.
            if deadline != self._sleep.deadline:
                self._sleep.deadline = deadline

    def _park_attached(self, actor: Evictable) -> None:
        self._idle.pop(actor.actor_id, None)
        self._attached[actor.actor_id] = actor

    def _reap(self, now: float) -> None:
        expired: list[Evictable] = []
        while self._idle:
            actor_id, (actor, since) = next(iter(self._idle.items()))
            if since + self._idle_timeout > now:
                break
            if actor.busy:
                del self._idle[actor_id]
            elif self._is_attached(actor_id):
                self._park_attached(actor)
            else:
                del self._idle[actor_id]
                expired.append(actor)
        for actor in expired:
            self._evict(actor, "idle")


def count_session_files(data_dir: Path) -> int:
    """How many session files (``<data_dir>/<xx>/<64 hex>.sqlite3``) there are, without keeping their names:
    a hibernated session must cost no memory beyond a count."""
    total = 0
    try:
        shards = os.scandir(data_dir)
    except FileNotFoundError:
        return 0
    with shards:
        for shard in shards:
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            with os.scandir(shard.path) as files:
                for entry in files:
                    if _SESSION_FILE.fullmatch(entry.name) and entry.name.startswith(shard.name):
                        total += 1
    return total
