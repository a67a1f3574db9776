"""Prometheus metrics of one server, in a registry of its own (two servers in a process share nothing).

Actor and run figures are read from the runtime when scraped; connection gauges and the latency
histogram are kept by the WebSocket and SSE handlers. Commit-to-send latency is measured for chunks sent
live (not replayed): from the moment the runtime published the chunk, which is right after its
transaction committed (the output gate), to the moment the frame was handed to the server; chunks sent
together in one group count once, with the oldest one's latency.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from stores import StoredChunk

if TYPE_CHECKING:
    from ..runtime import AgentRuntime

CONTENT_TYPE: str = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCHES_KEPT = 64


class _RuntimeCollector:
    """Reads the runtime's counters at scrape time."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self._runtime = runtime

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        live = activations = evictions = 0
        try:
            stats = self._runtime.directory.statistics()
        except RuntimeError:  # not open yet, or closed
            pass
        else:
            live, activations, evictions = stats.live_actors, stats.activations, stats.evictions
        yield GaugeMetricFamily("helix_live_actors", "Session actors in memory.", value=live)
        yield CounterMetricFamily(
            "helix_actor_activations",
            "Actor activations (a reactivation after eviction counts).",
            value=activations,
        )
        yield CounterMetricFamily(
            "helix_actor_evictions", "Actors evicted for idleness or the live-actor cap.", value=evictions
        )
        yield GaugeMetricFamily("helix_runs_active", "Runs executing now.", value=self._runtime.runs_active)
        yield CounterMetricFamily(
            "helix_chunks", "Chunks committed and published.", value=self._runtime.hub.chunks_published
        )


class PublishClock:
    """When recent chunk batches were published, for sessions that have a server-side listener."""

    def __init__(self) -> None:
        self._listeners: Counter[str] = Counter()
        self._batches: dict[str, deque[tuple[int, int, float]]] = {}

    def wrap(
        self, publish: Callable[[str, list[StoredChunk]], None]
    ) -> Callable[[str, list[StoredChunk]], None]:
        def timed_publish(session_id: str, stored: list[StoredChunk]) -> None:
            batches = self._batches.get(session_id)
            if batches is not None and stored:
                batches.append((stored[0].seq, stored[-1].seq, trio.current_time()))
            publish(session_id, stored)

        return timed_publish

    @contextmanager
    def listening(self, session_id: str) -> Iterator[None]:
        self._listeners[session_id] += 1
        self._batches.setdefault(session_id, deque(maxlen=_BATCHES_KEPT))
        try:
            yield
        finally:
            self._listeners[session_id] -= 1
            if self._listeners[session_id] <= 0:
                del self._listeners[session_id]
                del self._batches[session_id]

    def published_at(self, session_id: str, seq: int) -> float | None:
        for first, last, at in reversed(self._batches.get(session_id, ())):
            if first <= seq <= last:
                return at
        return None


class ServerMetrics:
    def __init__(self, runtime: AgentRuntime) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_RuntimeCollector(runtime))
        self.websocket_connections = Gauge(
            "helix_websocket_connections", "Open WebSocket connections.", registry=self.registry
        )
        self.sse_connections = Gauge("helix_sse_connections", "Open SSE streams.", registry=self.registry)
        self.send_latency = Histogram(
            "helix_chunk_commit_to_send_seconds",
            "Seconds from a chunk's commit (its publication) to its send, for chunks sent live; one "
            "observation per group of chunks sent together (the oldest one's).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.clock = PublishClock()
        runtime.services.publish = self.clock.wrap(runtime.services.publish)

    def chunks_sent(self, session_id: str, group: list[StoredChunk], *, since: float) -> None:
        """Record a group of chunks just sent together (one or more): one observation, the oldest chunk's
        time from publication to the end of the group's send. ``since`` is when the connection started
        listening, so that chunks published before it (replayed) are not counted."""
        published = self.clock.published_at(session_id, group[0].seq)
        if published is not None and published >= since:
            self.send_latency.observe(max(0.0, trio.current_time() - published))

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
