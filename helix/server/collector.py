"""Garbage-collector settings for a process that serves sessions.

Python's cyclic collector runs a young-generation pass every 700 net allocations and, every so often, a
pass over every object the process holds. A streaming server allocates a few small objects per chunk
while holding many long-lived ones (live actors, connections, the app), so with the defaults the
collector took about a third of the CPU of the chunk pipeline (``bench/stream.py``: 26 -> 17 µs per
chunk in process at 50 sessions; the stream ratio to the bare quart-trio ceiling went from 0.51-0.59 to
0.69-0.80). The server therefore, when it starts serving, moves everything allocated so far (modules,
the app, the runtime) out of the collector's view with :func:`gc.freeze` and makes the young generation
collect every :data:`YOUNG_GENERATION_THRESHOLD` allocations. Cycles are still collected; garbage in a
cycle lives a little longer.

The passes over the older generations are the collector's long pauses: every object they hold is walked,
and a WebSocket that closes leaves a few hundred objects in reference cycles (the ``Cancelled``
exceptions, tracebacks and frames of its cancelled tasks, in trio, Quart and our code), which only those
passes free. 200 sessions ending left ~85,000 such objects, and the pass that later freed them stalled
every stream for 200-450 ms. So the server also runs :func:`collect_when_idle`: when no run has executed
and no chunk has been committed for a whole poll interval, it runs the full collection then, while no
stream is waiting, instead of letting the thresholds trigger it during the next burst of work; once per
quiet spell, as a full pass costs 50-350 ms and new clients may be connecting meanwhile. Under unbroken
load the thresholds still decide. ``create_agent_server(tune_gc=False)`` leaves the collector
alone.
"""

from __future__ import annotations

import gc
from typing import NoReturn

import trio

from ..runtime import AgentRuntime

YOUNG_GENERATION_THRESHOLD = 20_000
OLDER_GENERATION_THRESHOLD = 20


def tune_collector() -> None:
    """Freeze what exists now and raise the collection thresholds (never lowering one already higher)."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(
        max(young, YOUNG_GENERATION_THRESHOLD),
        max(middle, OLDER_GENERATION_THRESHOLD),
        max(old, OLDER_GENERATION_THRESHOLD),
    )
    gc.freeze()


IDLE_POLL_SECONDS = 0.25


async def collect_when_idle(runtime: AgentRuntime, *, poll: float = IDLE_POLL_SECONDS) -> NoReturn:
    """Every ``poll`` seconds: if no run of ``runtime`` is executing and no chunk has been committed since
    the last look, but some have been since this last collected, and a young collection has promoted
    anything since the last full one, run a full collection. So: at most one per quiet spell, and none
    for a server that has been quiet all along."""
    seen = collected_at = runtime.hub.chunks_published
    while True:
        await trio.sleep(poll)
        committed = runtime.hub.chunks_published
        _, since_middle, since_full = gc.get_count()
        quiet = committed == seen and runtime.runs_active == 0
        if quiet and committed != collected_at and (since_middle or since_full):
            gc.collect()
            collected_at = committed
        seen = committed
