"""A silence watchdog: a cancel scope that fires once nothing happened for a while, cheap to feed.

Moving a trio deadline re-registers it (a heap push); done per streamed model event it showed in
profiles at several microseconds each. Feeding a :class:`SilenceWatchdog` is a clock read and a
comparison: the deadline moves only when it has come within ``timeout`` of now, and then it moves to
``now + timeout + slack``. So the scope fires between ``timeout`` and ``timeout + slack`` after the last
feed, never earlier, and the deadline moves about once per ``slack`` of continuous activity.
"""

from __future__ import annotations

import trio

SLACK_FRACTION = 1 / 16


class SilenceWatchdog:
    """Use ``with watchdog.scope:`` around the watched work and :meth:`feed` on each sign of life;
    ``scope.cancelled_caught`` afterwards says whether it fired."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.slack = timeout * SLACK_FRACTION
        self.scope = trio.CancelScope(deadline=trio.current_time() + timeout + self.slack)

    def feed(self) -> None:
        now = trio.current_time()
        if self.scope.deadline < now + self.timeout:
            self.scope.deadline = now + self.timeout + self.slack
