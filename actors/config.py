"""The actor runtime's settings: one frozen, keyword-only record, changed with ``dataclasses.replace``."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ActorLimits:
    """Limits and timings of an :class:`~actors.ActorDirectory`.

    ``idle_timeout``: seconds an actor may sit with no queued or running work and no attached client before
    it is evicted (``math.inf`` disables idle eviction). ``max_live_actors``: how many actors may be live
    before activating another evicts the least recently used idle ones (busy actors are never evicted, so
    the cap is exceeded while every live actor is busy). ``mailbox_size``: messages queued per actor
    before ``send``/``call`` wait for room. ``shutdown_grace``: seconds a stopping actor's running work gets
    to reach a safe point before it is cancelled. ``alarm_retry_initial`` / ``alarm_retry_max``: the
    exponential backoff between attempts of an alarm whose handler raised.
    """

    idle_timeout: float = 60.0
    max_live_actors: int = 10_000
    mailbox_size: int = 1024
    shutdown_grace: float = 10.0
    alarm_retry_initial: float = 1.0
    alarm_retry_max: float = 60.0

    def __post_init__(self) -> None:
        if math.isnan(self.idle_timeout) or self.idle_timeout < 0:
            raise ValueError(f"idle_timeout must be >= 0 seconds (or math.inf), got {self.idle_timeout!r}")
        if self.max_live_actors < 1:
            raise ValueError(f"max_live_actors must be at least 1, got {self.max_live_actors!r}")
        if self.mailbox_size < 1:
            raise ValueError(f"mailbox_size must be at least 1, got {self.mailbox_size!r}")
        if math.isnan(self.shutdown_grace) or self.shutdown_grace < 0:
            raise ValueError(f"shutdown_grace must be >= 0 seconds, got {self.shutdown_grace!r}")
        if not 0 < self.alarm_retry_initial <= self.alarm_retry_max:
            raise ValueError(
                "alarm retry backoff needs 0 < alarm_retry_initial <= alarm_retry_max, got "
                f"{self.alarm_retry_initial!r} and {self.alarm_retry_max!r}"
            )
