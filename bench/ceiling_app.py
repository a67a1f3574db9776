"""The ceiling of workload 1: a bare quart-trio WebSocket endpoint, served exactly like the helix app
(``hypercorn -k trio --workers 1 bench.ceiling_app:app``), pushing the same frames with no storage.

It speaks the part of the helix WebSocket protocol the benchmark client uses: ``/sessions/{sid}/ws``
accepts, a ``{"type": "start", ...}`` text frame is answered with the ack frame and then the chunk frames
of one run, as fast as the socket takes them. The frames are the ones a helix session sent in the same
benchmark run (``HELIX_CEILING_FRAMES``, a JSON file ``{"ack": str, "frames": [str, ...]}`` written by the
client's ``--dump-frames``): same count, same bytes, except that each frame's ``ts`` (13 digits, epoch ms)
is the time it is sent, so emit-to-receive latency means the same thing on both servers.

``HELIX_CEILING_DELAY`` (seconds, default 0) paces the frames as ``ScriptedAdapter(delay=...)`` paces
model events: a ``trio.sleep(delay)`` before each frame (the paced ceiling of workload 2).
"""

from __future__ import annotations

import json
import os
import time

import trio
from quart import websocket
from quart_trio import QuartTrio


def _load_frames() -> tuple[str, list[tuple[str, str]]]:
    path = os.environ.get("HELIX_CEILING_FRAMES")
    if not path:
        return '{"type":"ack"}', []
    with open(path, encoding="utf-8") as file:
        recorded = json.load(file)
    frames: list[tuple[str, str]] = []
    for text in recorded["frames"]:
        ts = json.loads(text)["ts"]
        marker = f'"ts":{ts}'
        head, found, tail = text.partition(marker)
        if not found:
            raise ValueError(f"frame without a plain ts field: {text[:80]}")
        frames.append((head + '"ts":', tail))
    return recorded["ack"], frames


ACK, FRAMES = _load_frames()
DELAY = float(os.environ.get("HELIX_CEILING_DELAY", "0"))

app = QuartTrio(__name__)


@app.route("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.websocket("/sessions/<sid>/ws")
async def session_ws(sid: str) -> None:
    await websocket.accept()
    while True:
        command = json.loads(await websocket.receive())
        if command.get("type") != "start":
            await websocket.send('{"type":"error","httpStatus":400}')
            continue
        await websocket.send(ACK)
        for head, tail in FRAMES:
            if DELAY > 0:
                await trio.sleep(DELAY)
            await websocket.send(f"{head}{int(time.time() * 1000)}{tail}")
