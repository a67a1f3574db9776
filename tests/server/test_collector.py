"""Serving tunes the process's garbage collector (helix.server.collector); in-process use and
``tune_gc=False`` leave it alone. Each case runs in a fresh interpreter, as the settings are per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
