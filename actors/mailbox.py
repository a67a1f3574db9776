"""An actor's mailbox: a bounded FIFO of envelopes, handled one at a time by the actor's own task.

Arrival order is the order in which ``put`` placed envelopes in the queue. ``put`` enqueues before it
yields to the scheduler, so for a live actor with room in its mailbox the order of ``call``/``send``
invocations is the order of handling. When the mailbox is full, ``put`` waits, and waiting senders are
let in first come, first served (trio's memory channel hands a waiting sender's envelope to the queue the
moment a slot frees up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio


class MailboxClosedError(Exception):
    """Internal: the mailbox stopped taking envelopes because its actor is stopping or failed to start."""


@dataclass(eq=False)
class Reply:
    """A one-shot slot for the answer to one ``call``."""

    _event: trio.Event = field(default_factory=trio.Event)
    _value: Any = None
    _error: BaseException | None = None

    def set_result(self, value: Any) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def set_error(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> Any:
        """The handler's return value; raises what the handler raised."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


@dataclass(frozen=True, eq=False)
class Envelope:
    """One queued message. ``reply`` is ``None`` for fire-and-forget sends."""

    message: Any
    reply: Reply | None = None


class Mailbox:
    """Bounded FIFO of :class:`Envelope`; one consumer (the actor's task), any number of producers."""

    def __init__(self, capacity: int) -> None:
        self._send, self._receive = trio.open_memory_channel[Envelope](capacity)
        self.handling = False
        """Set by the consumer while it handles an envelope, so that ``depth`` counts it."""

    @property
    def depth(self) -> int:
        """Envelopes queued, waiting for room, or being handled."""
        stats = self._send.statistics()
        return stats.current_buffer_used + stats.tasks_waiting_send + int(self.handling)

    async def put(self, envelope: Envelope) -> None:
        """Queue ``envelope``, waiting while the mailbox is full. Raises :class:`MailboxClosedError` if the
        mailbox is closed (or closes while waiting); the envelope was then not queued."""
        try:
            await self._send.send(envelope)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosedError() from None

    async def get(self) -> Envelope | None:
        """The next envelope, waiting for one; ``None`` once the mailbox is closed and empty."""
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            return None

    def close(self) -> list[Envelope]:
        """Stop taking envelopes and return the ones still queued (unhandled), oldest first. Senders waiting
        for room get :class:`MailboxClosedError`. Idempotent."""
        self._send.close()
        left: list[Envelope] = []
        while True:
            try:
                left.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return left
