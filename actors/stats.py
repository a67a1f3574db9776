"""Statistics records: frozen snapshots for debugging and for the server's metrics endpoint."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class GateStatistics:
    """One output gate's counters. ``writes / transactions`` is the group-commit coalescing factor."""

    transactions: int
    """Group-commit transactions that committed."""
    writes: int
    """Writes that committed (each ran inside one of those transactions)."""
    outputs: int
    """Outputs released to ``deliver`` (or returned by ``commit``) after their commit."""
    failed_transactions: int
    """Batches whose transaction raised and rolled back; none of their outputs were released."""
    queued: int
    """Writes waiting for the next batch."""


@dataclass(frozen=True, kw_only=True)
class DirectoryStatistics:
    """A directory's state and counters since it opened."""

    live_actors: int
    """Actors in memory: activating, serving, or stopping."""
    busy_actors: int
    """Live actors with queued or running messages or spawned tasks (never evicted)."""
    hibernated_actors: int
    """Session files in the data directory whose actor is not live: the files found at boot plus those
    created since, minus the live ones. Files created or deleted behind the directory's back are not seen."""
    activations: int
    """Successful activations (a reactivation after eviction counts again)."""
    activation_failures: int
    """Activations that raised (a locked file, ``on_activate`` raising, ...)."""
    evictions: int
    """Actors stopped to free memory: idle timeout, the live-actor cap, or ``evict()``; not shutdown."""
    mailbox_depth: int
    """Messages queued, waiting for room, or being handled, summed over live actors."""
    attached_clients: int
    """Attached clients (``attach()``), live actor or not."""
    alarms_pending: int
    """Actors with an armed alarm, including ones waiting to retry."""
    alarms_fired: int
    """Alarm handlers that returned (each clears its alarm)."""
    alarm_failures: int
    """Alarm attempts that raised (the handler, or the activation before it); each is retried."""
