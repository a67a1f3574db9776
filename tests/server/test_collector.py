"""Serving tunes the process's garbage collector (helix.server.collector); in-process use and
``tune_gc=False`` leave it alone. Those cases run in a fresh interpreter, as the settings are per process.
The idle collection runs against a stand-in runtime, with automatic collection off so only it can free
the garbage."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from helix.server.collector import IDLE_POLL_SECONDS, collect_when_idle

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, json, sys, trio
from adapters import ScriptedAdapter
from helix import Agent, AgentRegistry
from helix.server import create_agent_server

registry = AgentRegistry()
registry.register(Agent(name="a", system_prompt="x"))
server = create_agent_server(llm_adapter=lambda env, ctx: ScriptedAdapter([{"text": "hi"}]),
                             agents=registry, data_dir=sys.argv[1], tune_gc=sys.argv[2] == "on")
before = gc.get_threshold()

async def serve_lifespan():
    inbox, outbox = trio.open_memory_channel(10)
    events = []
    async def send(message):
        events.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            seen.update(threshold=gc.get_threshold(), frozen=gc.get_freeze_count())
            await inbox.send({"type": "lifespan.shutdown"})
    seen = {}
    await inbox.send({"type": "lifespan.startup"})
    await server({"type": "lifespan", "asgi": {"version": "3.0"}}, outbox.receive, send)
    return seen, events

async def in_process():
    async with server:
        return gc.get_threshold()

mode = sys.argv[3]
if mode == "served":
    seen, events = trio.run(serve_lifespan)
    print(json.dumps({"before": before, **seen, "events": events}))
else:
    print(json.dumps({"before": before, "threshold": trio.run(in_process), "frozen": gc.get_freeze_count()}))
"""


def run(tmp_path: Path, tune: str, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), tune, mode],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(done.stdout)


def test_serving_freezes_startup_objects_and_raises_the_thresholds(tmp_path: Path):
    seen = run(tmp_path, "on", "served")
    assert seen["events"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen["threshold"][0] >= 20_000 > seen["before"][0]
    assert seen["frozen"] > 1000


@pytest.mark.parametrize(("tune", "mode"), [("off", "served"), ("on", "in-process")])
def test_the_collector_is_left_alone_without_tuning_or_http(tmp_path: Path, tune: str, mode: str):
    seen = run(tmp_path, tune, mode)
    assert seen["threshold"] == seen["before"]
    assert seen["frozen"] == 0


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class _FakeRuntime:
    """What collect_when_idle reads of a runtime: runs executing now and chunks committed so far."""

    def __init__(self) -> None:
        self.runs_active = 0
        self.hub = SimpleNamespace(chunks_published=0)


def _garbage_past_the_young_generation() -> weakref.ref[_Cycle]:
    cycle = _Cycle()
    gc.collect(0)  # survives a young pass: only an older generation's pass can free it now
    return weakref.ref(cycle)


@pytest.fixture
def automatic_collection_off():
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def watched(nursery: trio.Nursery, automatic_collection_off: None) -> _FakeRuntime:
    """A stand-in runtime that collect_when_idle watches, for the rest of the test."""
    runtime = _FakeRuntime()
    nursery.start_soon(collect_when_idle, runtime)
    return runtime


async def test_a_server_gone_quiet_frees_garbage_the_thresholds_would_leave_once_per_quiet_spell(
    autojump_clock: trio.testing.MockClock, watched: _FakeRuntime
):
    garbage = _garbage_past_the_young_generation()
    await trio.sleep(IDLE_POLL_SECONDS * 2.5)
    assert garbage() is not None  # quiet all along: nothing finished that left garbage
    watched.hub.chunks_published += 1  # a chunk committed: a run has ended since
    await trio.sleep(IDLE_POLL_SECONDS * 2)
    assert garbage() is None
    later = _garbage_past_the_young_generation()
    await trio.sleep(IDLE_POLL_SECONDS * 4)
    assert later() is not None  # same quiet spell: the one full pass is spent
    watched.hub.chunks_published += 1
    await trio.sleep(IDLE_POLL_SECONDS * 2)
    assert later() is None


async def test_no_full_collection_while_a_run_executes_or_chunks_are_committed(
    autojump_clock: trio.testing.MockClock, watched: _FakeRuntime
):
    await trio.lowlevel.checkpoint()  # the collector takes its first look at the counters
    watched.runs_active = 1  # a run starts, commits its first chunk, then waits on a slow model
    watched.hub.chunks_published += 1
    garbage = _garbage_past_the_young_generation()
    await trio.sleep(IDLE_POLL_SECONDS * 4)
    assert garbage() is not None
    await trio.sleep(IDLE_POLL_SECONDS / 2)  # from here on, act half-way between two looks
    watched.runs_active = 0
    for _ in range(4):  # a chunk committed in every interval (a run's last chunks, say)
        watched.hub.chunks_published += 1
        await trio.sleep(IDLE_POLL_SECONDS)
    assert garbage() is not None
    await trio.sleep(IDLE_POLL_SECONDS * 2.5)
    assert garbage() is None
