"""Garbage-collector settings for a process that serves sessions.

Python's cyclic collector runs a young-generation pass every 700 net allocations and, every so often, a
pass over every object the process holds. A streaming server allocates a few small objects per chunk
while holding many long-lived ones (live actors, connections, the app), so with the defaults the
collector took about a third of the CPU of the chunk pipeline (``bench/stream.py``: 26 -> 17 µs per
chunk in process at 50 sessions; the stream ratio to the bare quart-trio ceiling went from 0.51-0.59 to
0.69-0.80). The server therefore, when it starts serving, moves everything allocated so far (modules,
the app, the runtime) out of the collector's view with :func:`gc.freeze` and makes the young generation
collect every :data:`YOUNG_GENERATION_THRESHOLD` allocations. Cycles are still collected; garbage in a
cycle lives a little longer. ``create_agent_server(tune_gc=False)`` leaves the collector alone.
"""

from __future__ import annotations

import gc

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
