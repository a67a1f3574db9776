"""The output gate (DESIGN §2): what an actor sends out leaves only after the writes behind it commit.

A write is a synchronous function of the store that returns the outputs it produced (chunks, say). Writes
are queued and run together inside one transaction (group commit); only after that transaction commits
are their outputs handed to ``deliver``, in queue order. A client therefore never sees an output that a
crash could take back, and a burst of small writes costs one commit instead of one each.

Who commits: a flusher task (:meth:`OutputGate.serve`, run by the directory while the actor is live)
commits fire-and-forget writes; :meth:`OutputGate.commit` commits its own batch without waiting for the
flusher. Both first yield once to trio's scheduler, so writes queued by other tasks in the same
scheduling round join the batch. Everything touching the store is synchronous, so a batch is never
interleaved with another task's use of the store.

An *eager* gate (``eager_after``, what actors use) commits a fire-and-forget write at once, inside
:meth:`OutputGate.write`, when it is alone: nothing else queued and no commit in the last ``eager_after``
seconds. A write like that has no batch to wait for, and waiting for the flusher would cost it a scheduling
round (on a busy server, the longest part of a chunk's way to its listener) and the flusher's wake-up. The
writes right behind it, a burst, queue for the flusher and share one commit as before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

from stores import SessionStore

from .errors import GateClosedError
from .stats import GateStatistics

logger = logging.getLogger("actors.gate")

T = TypeVar("T")


class TransactionHeldError(RuntimeError):
    """The store was inside a transaction when the gate flushed, so the batch could not commit on its own.

    It means some code held ``store.transaction()`` open across an ``await``; the gate refuses to join
    that transaction, because it would release outputs before they were durable.
    """

    def __init__(self) -> None:
        super().__init__(
            "the output gate found the store inside a transaction: a store.transaction() block was held "
            "open across an await; finish it before awaiting, or write through the gate instead"
        )


@dataclass(eq=False, kw_only=True)
class _Write(Generic[T]):
    fn: Callable[[SessionStore], Sequence[T]] | None
    awaited: bool  # a commit() caller waits for it and hears of its failure
    done: bool = False
    outputs: list[T] = field(default_factory=list)
    error: Exception | None = None


class OutputGate(Generic[T]):
    """Group commit for one store, and release of outputs after commit.

    ``deliver`` receives the outputs of each committed batch (never an empty list), in queue order; it is
    called synchronously right after the commit and must not block. An exception it raises is logged: the
    batch is committed regardless. ``on_error`` receives the exception of each failed batch that held a
    fire-and-forget write (:meth:`write`). With ``eager_after`` (seconds, > 0), a lone write commits at
    once (see the module's docstring).
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        deliver: Callable[[list[T]], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        eager_after: float | None = None,
    ) -> None:
        if eager_after is not None and not eager_after > 0:
            # 0 would let a write queued by ``deliver`` commit from inside the flush that delivers.
            raise ValueError(f"eager_after must be > 0 seconds, not {eager_after!r}")
        self._store = store
        self._eager_after = eager_after
        self._last_flush = -math.inf
        self._deliver = deliver
        self._on_error = on_error
        self._queue: list[_Write[T]] = []
        self._wakeup = trio.Event()
        self._unreported: Exception | None = None
        self._closed = False
        self._transactions = 0
        self._writes = 0
        self._outputs = 0
        self._failed = 0

    # -- configuration ---------------------------------------------------------------------------

    def set_deliver(self, deliver: Callable[[list[T]], None]) -> None:
        """Set where committed outputs go. Outputs of batches committed before this are not replayed."""
        self._deliver = deliver

    def set_on_error(self, on_error: Callable[[BaseException], None] | None) -> None:
        """Set (or remove) the callback for failed fire-and-forget writes."""
        self._on_error = on_error

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: the actor stopped and the store is (about to be) closed."""
        return self._closed

    # -- writing ---------------------------------------------------------------------------------

    def write(self, fn: Callable[[SessionStore], Sequence[T]], *, eager: bool = True) -> None:
        """Queue ``fn``; it runs inside the next group-commit transaction, and the outputs it returns go to
        ``deliver`` after that transaction commits. Never blocks. On an eager gate a lone write commits
        (and is delivered) before this returns, unless ``eager=False`` (a writer that knows a commit of its
        own follows at once, which this write should join); never inside a transaction someone holds open.

        If the batch's transaction raises, the batch rolls back, nothing of it is delivered, the exception
        goes to ``on_error`` and is raised by the next :meth:`commit` or :meth:`flush` (unless a
        ``commit()`` in that same batch already raised it). Raises :class:`GateClosedError` once the gate
        is closed.
        """
        self._check_open()
        self._queue.append(_Write(fn=fn, awaited=False))
        # Alone: nothing queued before it (a commit() waiting for its round included), and no commit
        # in the last eager_after seconds, which would mean a burst the flusher should batch.
        if (
            eager
            and self._eager_after is not None
            and len(self._queue) == 1
            and not self._store.in_transaction
            and trio.current_time() - self._last_flush >= self._eager_after
        ):
            self._flush()
            return
        self._wakeup.set()

    async def commit(self, fn: Callable[[SessionStore], Sequence[T]] | None = None) -> list[T]:
        """Queue ``fn`` (if given) and return once it, and every write queued before it, has committed
        and its batch's outputs have been delivered. Returns ``fn``'s outputs (``[]`` without ``fn``).

        Raises the exception of this batch's transaction if it raised (the whole batch rolled back and
        nothing of it was delivered), or, before queuing anything, the unreported exception of an earlier
        failed fire-and-forget batch. Raises :class:`GateClosedError` once the gate is closed. Cancelling
        the caller does not withdraw ``fn``: it stays queued and commits with the next batch (its failure
        then goes to ``on_error`` like a fire-and-forget write's).
        """
        self._raise_unreported()
        self._check_open()
        entry: _Write[T] = _Write(fn=fn, awaited=True)
        self._queue.append(entry)
        try:
            # One scheduling round: writes queued by other tasks in this round join our batch.
            await trio.lowlevel.checkpoint()
        except BaseException:
            if not entry.done:
                entry.awaited = False  # nobody waits for it any more; the flusher commits it
                self._wakeup.set()
            raise
        if not entry.done:
            self._flush()
        if entry.error is not None:
            raise entry.error
        return entry.outputs

    async def flush(self) -> None:
        """Wait until every write queued so far has committed and been delivered (``commit(None)``)."""
        await self.commit(None)

    def statistics(self) -> GateStatistics:
        return GateStatistics(
            transactions=self._transactions,
            writes=self._writes,
            outputs=self._outputs,
            failed_transactions=self._failed,
            queued=len(self._queue),
        )

    # -- the flusher -----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Commit fire-and-forget writes as they arrive, until :meth:`close`. The directory runs this in
        the actor's nursery from activation until the actor stops."""
        while not self._closed:
            # The first write of a batch wakes us; we run in the next scheduling round, after every task
            # already runnable in this one, so the writes they queue meanwhile share this transaction.
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            self._flush()

    def close(self) -> None:
        """Commit what is queued (the final flush), then refuse further writes. Idempotent. A failure of the
        final batch goes to ``on_error``/the log, as nobody is left to raise it to."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        self._wakeup.set()
        if self._unreported is not None:
            logger.error("output gate of %s closed with an unreported failed write", self._store.path,
                         exc_info=self._unreported)
            self._unreported = None

    # -- internals -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise GateClosedError(self._store.path)

    def _raise_unreported(self) -> None:
        error, self._unreported = self._unreported, None
        if error is not None:
            raise error

    def _flush(self) -> None:
        """Run everything queued in one transaction, then release its outputs. Synchronous, so no other
        task can touch the store (or queue into this batch) while it runs."""
        batch, self._queue = self._queue, []
        if self._eager_after is not None:
            self._last_flush = trio.current_time()
        writes = [entry for entry in batch if entry.fn is not None]
        outputs: list[T] = []
        error: Exception | None = None
        if writes:
            try:
                if self._store.in_transaction:
                    raise TransactionHeldError()
                with self._store.transaction():
                    for entry in writes:
                        assert entry.fn is not None
                        entry.outputs = list(entry.fn(self._store))
                        outputs.extend(entry.outputs)
            except Exception as exc:
                error = exc
        if error is not None:
            self._fail(batch, writes, error)
            return
        if writes:
            self._transactions += 1
            self._writes += len(writes)
            self._outputs += len(outputs)
        for entry in batch:
            entry.done = True
        # Commit before release: the transaction above has committed, so every output is durable now.
        if outputs and self._deliver is not None:
            try:
                self._deliver(outputs)
            except Exception:
                logger.exception("output gate of %s: deliver raised; the batch stays committed",
                                 self._store.path)

    def _fail(self, batch: list[_Write[T]], writes: list[_Write[T]], error: Exception) -> None:
        self._failed += 1
        for entry in batch:
            entry.done = True
            entry.error = error
            entry.outputs = []
        if not any(entry.awaited for entry in batch):
            # Nobody is waiting for this batch: keep the error for the next commit()/flush().
            self._unreported = error
        if any(not entry.awaited for entry in writes):
            if self._on_error is None:
                logger.error("output gate of %s: a batch of writes failed and rolled back", self._store.path,
                             exc_info=error)
            else:
                try:
                    self._on_error(error)
                except Exception:
                    logger.exception("output gate of %s: on_error raised", self._store.path)
