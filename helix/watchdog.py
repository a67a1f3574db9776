"""A silence watchdog: a cancel scope that fires once nothing happened for a while, cheap to feed.

Moving a trio deadline re-registers it (a heap push) and entering a fresh cancel scope costs more still;
done per streamed event or per sent frame, either showed in profiles at several microseconds each. Feeding
a :class:`SilenceWatchdog` is a clock read and a comparison: the deadline moves only when it has come
within ``timeout`` of now (or was paused), and then it moves to ``now + timeout + slack``. So the scope
fires between ``timeout`` and ``timeout + slack`` after the last feed, never earlier, and the deadline
moves about once per ``slack`` of continuous activity.
"""

from __future__ import annotations

import math

import trio

SLACK_FRACTION = 1 / 16


class SilenceWatchdog:
    """Use ``with watchdog.scope:`` around the watched work; :meth:`feed` on each sign of life;
    :meth:`pause` while waiting is allowed to last forever. ``scope.cancelled_caught`` afterwards says
    whether it fired."""

    def __init__(self, timeout: float, *, armed: bool = True) -> None:
        self.timeout = timeout
        self.slack = timeout * SLACK_FRACTION
        self.scope = trio.CancelScope()
        if armed:
            self.feed()

    def feed(self) -> None:
        now = trio.current_time()
        deadline = self.scope.deadline
        if deadline < now + self.timeout or deadline == math.inf:  # close, or paused
            self.scope.deadline = now + self.timeout + self.slack

    def pause(self) -> None:
        self.scope.deadline = math.inf
