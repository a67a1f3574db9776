"""Many sessions at once through one server process."""

from __future__ import annotations

import json
import time

import httpx
import trio
from trio_websocket import open_websocket_url

from .conftest import ServerProcess
from .support import assert_consecutive, history, ws_collect_until_terminal

SESSIONS = 100


async def test_100_sessions_stream_at_once_each_complete_and_in_order(
    plain_server: ServerProcess, http: httpx.AsyncClient, sid: str
):
    results: dict[str, list[dict]] = {}
    began = time.monotonic()

    async def one(index: int) -> None:
        session = f"{sid}-{index}"
        url = f"{plain_server.ws_base}/sessions/{session}/ws?fromSeq=1"
        async with open_websocket_url(url) as ws:
            await ws.send_message(
                json.dumps({"type": "start", "agentType": "chatty", "input": {"message": "go"}})
            )
            ack = json.loads(await ws.get_message())
            assert ack["type"] == "ack", ack
            results[session] = await ws_collect_until_terminal(ws, ack["runId"])

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            for index in range(SESSIONS):
                nursery.start_soon(one, index)
    elapsed = time.monotonic() - began
    assert len(results) == SESSIONS
    for chunks in results.values():
        assert_consecutive(chunks, 1)
        assert chunks[-1]["type"] == "run_completed"
    sample = f"{sid}-7"
    assert results[sample] == await history(http, sample)
    metrics = (await http.get("/metrics")).text
    sent_live = next(
        line for line in metrics.splitlines() if line.startswith("helix_chunk_commit_to_send_seconds_count")
    )
    assert float(sent_live.split()[1]) > 0
    print(f"{SESSIONS} sessions streamed {sum(map(len, results.values()))} chunks in {elapsed:.1f} s")
