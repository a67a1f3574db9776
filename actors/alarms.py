"""Alarms: the directory-level index of pending alarms, and the schedule that fires them.

An actor's alarm lives in its own file (``store.set_alarm``) and, so that a restart re-arms every alarm
without opening every file, in one index file, ``<data_dir>/alarms.sqlite3`` (one row per actor id; the
name does not match the ``??/*.sqlite3`` pattern of session files). The actor's file is the truth; the index
may only ever hold *more*: setting writes the index first, clearing writes the file first, so a crash
between the two leaves an index row whose alarm the file no longer has. Firing such a row finds no alarm
in the file and just drops the row.

Delivery is at least once: the schedule forgets an alarm only after its handler returned. A failed attempt
is retried after ``retry_initial * 2**(attempt-1)`` seconds, capped at ``retry_max``. Times are epoch
seconds by the directory's injected clock; waiting is ``trio.sleep(at - clock())``, so a test can pass
``clock=trio.current_time`` and run alarms on trio's ``MockClock``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .ids import ActorId

INDEX_FILE_NAME = "alarms.sqlite3"


class AlarmIndex:
    """The index file. Several processes may share it (each arms every row; the one that cannot lock a
    session's file retries with backoff until the owner has cleared it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each set/clear is one small durable write, made by the one trio thread.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS alarms ("
                " actor_id TEXT PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL) WITHOUT ROWID"
            )
        except BaseException:
            self._db.close()
            raise

    def pending(self) -> list[tuple[ActorId, str, float]]:
        """Every row: ``(actor_id, name, at)``."""
        rows = self._db.execute("SELECT actor_id, name, at FROM alarms").fetchall()
        return [(ActorId(str(actor_id)), str(name), float(at)) for actor_id, name, at in rows]

    def set(self, actor_id: ActorId, name: str, at: float) -> None:
        self._db.execute(
            "INSERT INTO alarms(actor_id, name, at) VALUES (?, ?, ?) "
            "ON CONFLICT(actor_id) DO UPDATE SET name = excluded.name, at = excluded.at",
            (actor_id, name, at),
        )

    def clear(self, actor_id: ActorId) -> None:
        self._db.execute("DELETE FROM alarms WHERE actor_id = ?", (actor_id,))

    def close(self) -> None:
        self._db.close()


@dataclass(eq=False, kw_only=True)
class ArmedAlarm:
    actor_id: ActorId
    name: str
    at: float
    """The alarm time as stored."""
    fire_at: float
    """When to attempt delivery next: ``at``, or later while retrying."""
    generation: int
    """Changes whenever the alarm is set again, so a finishing delivery cannot clear a newer alarm."""
    attempts: int = 0
    in_flight: bool = False


class AlarmSchedule:
    """Armed alarms in memory (one per actor), and the loop that fires each when due."""

    def __init__(self, *, clock: Callable[[], float], retry_initial: float, retry_max: float) -> None:
        self._clock = clock
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._armed: dict[ActorId, ArmedAlarm] = {}
        # (fire_at, tiebreak, actor id, generation); stale entries are skipped when popped.
        self._heap: list[tuple[float, int, ActorId, int]] = []
        self._tiebreak = itertools.count()
        self._generations = itertools.count(1)
        self._sleep: trio.CancelScope | None = None

    def __len__(self) -> int:
        return len(self._armed)

    def get(self, actor_id: ActorId) -> ArmedAlarm | None:
        return self._armed.get(actor_id)

    def arm(self, actor_id: ActorId, name: str, at: float) -> None:
        """Arm (or re-arm, replacing) the alarm of ``actor_id`` for ``at``."""
        generation = next(self._generations)
        alarm = ArmedAlarm(actor_id=actor_id, name=name, at=at, fire_at=at, generation=generation)
        self._armed[actor_id] = alarm
        self._push(alarm)

    def disarm(self, actor_id: ActorId, *, generation: int | None = None) -> bool:
        """Forget the alarm of ``actor_id`` (only if it is still ``generation``, when given)."""
        alarm = self._armed.get(actor_id)
        if alarm is None or (generation is not None and alarm.generation != generation):
            return False
        del self._armed[actor_id]
        return True

    def retry(self, actor_id: ActorId, generation: int) -> float | None:
        """Schedule the next attempt after a failed one; returns the delay, or ``None`` if the alarm was
        replaced or cleared meanwhile (nothing to retry)."""
        alarm = self._armed.get(actor_id)
        if alarm is None or alarm.generation != generation:
            return None
        alarm.attempts += 1
        delay: float = min(self._retry_initial * 2.0 ** (alarm.attempts - 1), self._retry_max)
        alarm.fire_at = self._clock() + delay
        alarm.in_flight = False
        self._push(alarm)
        return delay

    async def run(self, fire: Callable[[ArmedAlarm], None]) -> None:
        """Call ``fire(alarm)`` for each alarm when it is due (it stays armed, marked in flight, until
        :meth:`disarm` or :meth:`retry`). ``fire`` must not block. Runs until cancelled."""
        while True:
            alarm = self._next()
            delay = math.inf if alarm is None else alarm.fire_at - self._clock()
            if delay > 0:
                with trio.CancelScope() as sleep:
                    self._sleep = sleep
                    await trio.sleep(delay)
                self._sleep = None
                continue  # re-read the clock: an earlier alarm may have been armed, or the clock jumped
            assert alarm is not None
            heapq.heappop(self._heap)
            alarm.in_flight = True
            fire(alarm)
            await trio.lowlevel.checkpoint()

    # -- internals -------------------------------------------------------------------------------

    def _push(self, alarm: ArmedAlarm) -> None:
        if len(self._heap) > 2 * len(self._armed) + 64:
            # Re-arming leaves stale entries behind; rebuild before they outnumber the live ones.
            self._heap = [
                (a.fire_at, next(self._tiebreak), a.actor_id, a.generation)
                for a in self._armed.values()
                if not a.in_flight and a is not alarm
            ]
            heapq.heapify(self._heap)
        heapq.heappush(self._heap, (alarm.fire_at, next(self._tiebreak), alarm.actor_id, alarm.generation))
        if self._sleep is not None and self._heap[0][2] == alarm.actor_id:
            self._sleep.cancel(reason="an earlier alarm was armed")

    def _next(self) -> ArmedAlarm | None:
        """The earliest live heap entry, dropping stale ones from the top."""
        while self._heap:
            fire_at, _, actor_id, generation = self._heap[0]
            alarm = self._armed.get(actor_id)
            if (
                alarm is not None
                and alarm.generation == generation
                and alarm.fire_at == fire_at
                and not alarm.in_flight
            ):
                return alarm
            heapq.heappop(self._heap)
        return None
