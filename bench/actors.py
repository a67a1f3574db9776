"""Benchmark of the actor runtime (actors/). Run from the repository root: ``python bench/actors.py``.

Prints one JSON object:

- ``cold_activation_ms`` ``{"median", "p99"}``: ``directory.get(name)`` of a hibernated session (its file
  on disk, the actor not live), up to ``on_activate`` having returned (target: median < 2 ms); and for
  comparison ``store_open_ms``, ``SessionStore.open`` plus its first read of the same kind of file, timed
  alternately with the activations: the floor the runtime adds to;
- ``warm_dispatch_us`` ``{"median", "p99"}``: one ``call()`` round trip to a live actor;
- ``messages_per_s``: ``one_actor`` (100,000 pipelined ``send``s to one actor, timed until the last is
  handled) and ``across_1000_actors`` (100 ``send``s to each of 1,000 live actors, interleaved);
- ``gate``: writes per transaction of the output gate under concurrent writers: 100 tasks streaming
  fire-and-forget chunk writes (``write``, one per scheduling round each) and 100 tasks each awaiting
  ``commit`` of its writes; ``single_write``, one streaming writer alone, shows the floor;
- ``memory``: resident memory (RSS) per session: ``per_hibernated_session_bytes`` with 10,000 session
  files on disk (RSS delta of opening the directory over them, divided by 10,000: the index entry only),
  ``per_session_after_eviction_bytes`` (RSS delta after activating and evicting all 10,000, same
  process; ``..._and_malloc_trim_bytes`` after glibc's ``malloc_trim`` returned free heap pages to the
  OS, which separates memory malloc keeps around from memory still in use),
  ``per_live_idle_actor_bytes`` with 1,000 live idle actors, and for comparison ``per_open_store_bytes``,
  the same for 1,000 bare open stores (the SQLite connection, no actor). Each measurement runs in its
  own process.

Timings use the real clock on a temporary directory (page cache warm; no fsync per commit by design).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio.lowlevel

from actors import Actor, ActorContext, ActorLimits, OutputGate, open_directory
from stores import ChunkDraft, SessionStore, StoredChunk, file_for_name


class BenchActor(Actor):
    """Echoes; counts what it handled."""

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.handled = 0

    async def on_message(self, message: Any) -> Any:
        self.handled += 1
        return message


def _quantiles(samples: Sequence[float], scale: float) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median": round(statistics.median(ordered) * scale, 3), "p99": round(p99 * scale, 3)}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _load_malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


def _make_sessions(data_dir: Path, names: Sequence[str]) -> None:
    """Session files on disk, as a previous run would have left them (copies of one fresh file)."""
    template = data_dir / "template.sqlite3"
    with SessionStore.open(template) as store:
        store.set_name("template")
    for name in names:
        path = file_for_name(data_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
    template.unlink()


LIMITS = ActorLimits(idle_timeout=3600.0, max_live_actors=20_000, mailbox_size=1024)


# -- phases ----------------------------------------------------------------------------------------


async def bench_cold_activation(root: Path, count: int = 1000) -> dict[str, Any]:
    data_dir = root / "cold"
    names = [f"cold-{i}" for i in range(count)]
    bare = [f"bare-{i}" for i in range(count)]
    _make_sessions(data_dir, names + bare)
    samples: list[float] = []
    store_samples: list[float] = []
    async with open_directory(data_dir=data_dir, actor_factory=BenchActor, limits=LIMITS) as directory:
        for name in names:  # each session has been live once (its name is recorded), as in production
            await directory.get(name)
            await directory.evict(name)
        for name, bare_name in zip(names, bare, strict=True):
            started = time.perf_counter()
            await directory.get(name)
            samples.append(time.perf_counter() - started)
            await directory.evict(name)
            # The floor, under the same conditions: opening the file and its first read, no actor.
            started = time.perf_counter()
            store = SessionStore.open(file_for_name(data_dir, bare_name))
            assert store.name is not None
            store_samples.append(time.perf_counter() - started)
            store.close()
    return {"cold_activation_ms": _quantiles(samples, 1000), "store_open_ms": _quantiles(store_samples, 1000)}


async def bench_dispatch(root: Path) -> dict[str, Any]:
    data_dir = root / "dispatch"
    out: dict[str, Any] = {}
    async with open_directory(data_dir=data_dir, actor_factory=BenchActor, limits=LIMITS) as directory:
        await directory.call("warm", 0)
        samples = []
        for i in range(10_000):
            started = time.perf_counter()
            await directory.call("warm", i)
            samples.append(time.perf_counter() - started)
        out["warm_dispatch_us"] = _quantiles(samples, 1e6)

        total = 100_000
        started = time.perf_counter()
        for i in range(total):
            await directory.send("one", i)
        await directory.call("one", "last")  # handled after every send before it
        one_actor = total / (time.perf_counter() - started)

        names = [f"many-{i}" for i in range(1000)]
        for name in names:
            await directory.call(name, "activate")
        started = time.perf_counter()
        for round_ in range(100):
            for name in names:
                await directory.send(name, round_)
        for name in names:
            await directory.call(name, "last")
        across = len(names) * 100 / (time.perf_counter() - started)
        out["messages_per_s"] = {"one_actor": round(one_actor), "across_1000_actors": round(across)}
    return out


async def bench_gate(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def chunk(i: int) -> ChunkDraft:
        return ChunkDraft(
            run_id="run_bench", type="text_delta", ts=time.time() * 1000, payload={"delta": f"t{i} "}
        )

    for mode, writers, per_writer in (("write", 100, 100), ("commit", 100, 100), ("single_write", 1, 10_000)):
        with SessionStore.open(root / "gate" / f"{mode}.sqlite3") as store:
            gate: OutputGate[StoredChunk] = OutputGate(store, deliver=lambda outputs: None)

            async def writer(
                n: int, gate: OutputGate[StoredChunk] = gate, mode: str = mode, per_writer: int = per_writer
            ) -> None:
                for i in range(per_writer):
                    draft = chunk(n * per_writer + i)
                    if mode != "commit":
                        gate.write(lambda store, draft=draft: store.chunks.append([draft]))
                        # A streaming producer: one chunk per scheduling round.
                        await trio.lowlevel.checkpoint()
                    else:
                        await gate.commit(lambda store, draft=draft: store.chunks.append([draft]))

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(gate.serve)
                async with trio.open_nursery() as producers:
                    for n in range(writers):
                        producers.start_soon(writer, n)
                await gate.flush()
                nursery.cancel_scope.cancel()
            elapsed = time.perf_counter() - started
            stats = gate.statistics()
            out[mode if mode.startswith("single") else f"concurrent_{mode}"] = {
                "writers": writers,
                "writes": stats.writes,
                "transactions": stats.transactions,
                "writes_per_transaction": round(stats.writes / stats.transactions, 1),
                "writes_per_s": round(stats.writes / elapsed),
            }
    return out


async def bench_memory_hibernated(root: Path, count: int = 10_000) -> dict[str, Any]:
    data_dir = root / "hibernated"
    names = [f"h-{i}" for i in range(count)]
    _make_sessions(data_dir, names)
    del names
    gc.collect()
    before = _rss_bytes()
    limits = ActorLimits(idle_timeout=3600.0, max_live_actors=100)
    async with open_directory(data_dir=data_dir, actor_factory=BenchActor, limits=limits) as directory:
        gc.collect()
        at_rest = _rss_bytes()
        assert directory.statistics().hibernated_actors == count
        # Wake every session once; the live-actor cap (100) evicts them again as we go.
        for i in range(count):
            await directory.get(f"h-{i}")
        for i in range(count):
            await directory.evict(f"h-{i}")
        gc.collect()
        after = _rss_bytes()
        # What remains after malloc hands its free pages back: retained heap, not live objects.
        trimmed = after if _malloc_trim is None else (_malloc_trim(0), _rss_bytes())[1]
        stats = directory.statistics()
        assert stats.live_actors == 0 and stats.hibernated_actors == count
    return {
        "sessions_on_disk": count,
        "per_hibernated_session_bytes": round((at_rest - before) / count, 1),
        "per_session_after_eviction_bytes": round((after - before) / count, 1),
        "per_session_after_eviction_and_malloc_trim_bytes": round((trimmed - before) / count, 1),
    }


async def bench_memory_live(root: Path, count: int = 1000) -> dict[str, Any]:
    data_dir = root / "live"
    names = [f"l-{i}" for i in range(count)]
    _make_sessions(data_dir, names)
    async with open_directory(data_dir=data_dir, actor_factory=BenchActor, limits=LIMITS) as directory:
        # One activation first, so that code paths and caches common to all actors are not counted.
        await directory.call("warm-up", 0)
        gc.collect()
        before = _rss_bytes()
        for name in names:
            await directory.call(name, 0)
        gc.collect()
        after = _rss_bytes()
        assert directory.statistics().live_actors == count + 1
    return {"live_idle_actors": count, "per_live_idle_actor_bytes": round((after - before) / count)}


async def bench_memory_store(root: Path, count: int = 1000) -> dict[str, Any]:
    """For comparison: what one open store (its SQLite connection) costs without any actor around it."""
    data_dir = root / "stores"
    names = [f"s-{i}" for i in range(count)]
    _make_sessions(data_dir, names)
    SessionStore.open(file_for_name(data_dir, "warm-up")).close()
    gc.collect()
    before = _rss_bytes()
    stores = [SessionStore.open(file_for_name(data_dir, name)) for name in names]
    gc.collect()
    after = _rss_bytes()
    for store in stores:
        store.close()
    return {"per_open_store_bytes": round((after - before) / count)}


PHASES = {
    "cold": bench_cold_activation,
    "dispatch": bench_dispatch,
    "gate": bench_gate,
    "memory_hibernated": bench_memory_hibernated,
    "memory_live": bench_memory_live,
    "memory_store": bench_memory_store,
}


def _run_phase(name: str) -> Any:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16_384)), hard))  # 1,000 open stores
    with tempfile.TemporaryDirectory(prefix="helix-bench-actors-") as tmp:
        return trio.run(PHASES[name], Path(tmp))


def _in_child(name: str) -> Any:
    """Run a phase in a fresh process, so that one phase's heap does not blur another's RSS."""
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(_run_phase(args.phase)))
        return
    started = time.perf_counter()
    result: dict[str, Any] = _in_child("cold")
    result.update(_in_child("dispatch"))
    result["gate"] = _in_child("gate")
    result["memory"] = {
        **_in_child("memory_hibernated"),
        **_in_child("memory_live"),
        **_in_child("memory_store"),
    }
    result["python"] = sys.version.split()[0]
    result["trio"] = trio.__version__
    result["runtime_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
