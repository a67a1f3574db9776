"""Server-Sent Events: ``id:`` is the seq, ``fromSeq`` inclusive, ``Last-Event-ID`` exclusive, heartbeats,
``follow=false``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from .support import assert_consecutive, history, path, start, wait_done


async def read_events(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
    heartbeat: trio.Event | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(events as {id, data}, comment lines) until the server ends the stream or ``stop_after`` events."""
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    current: dict[str, Any] = {}
    with trio.fail_after(20):
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                    if heartbeat is not None and line == ": heartbeat":
                        heartbeat.set()
                elif line.startswith("id: "):
                    current["id"] = int(line[4:])
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif line == "" and current:
                    events.append(current)
                    current = {}
                    if stop_after is not None and len(events) >= stop_after:
                        break
    return events, comments


async def test_sse_replays_from_from_seq_and_ends_after_the_run_with_follow_false(
    http: httpx.AsyncClient, sid
):
    await start(http, sid)
    await wait_done(http, sid)
    events, comments = await read_events(http, f"{path(sid, 'sse')}?fromSeq=5&follow=false")
    assert comments[0] == ": connected"
    assert all(e["id"] == e["data"]["seq"] for e in events)
    chunks = [e["data"] for e in events]
    assert_consecutive(chunks, 5)
    assert chunks[-1]["type"] == "run_completed"
    assert chunks == (await history(http, sid))[4:]


async def test_last_event_id_is_exclusive_and_wins_over_from_seq(http: httpx.AsyncClient, sid: str):
    await start(http, sid)
    await wait_done(http, sid)
    events, _ = await read_events(
        http, f"{path(sid, 'sse')}?fromSeq=1&follow=false", headers={"Last-Event-ID": "10"}
    )
    assert events[0]["id"] == 11
    assert_consecutive([e["data"] for e in events], 11)


async def test_sse_follows_a_live_run_and_sends_heartbeats_while_idle(http: httpx.AsyncClient, sid: str):
    # the test server sends a heartbeat every 0.3 s
    heartbeat = trio.Event()
    got: list[Any] = []
    async with trio.open_nursery() as nursery:

        async def listen() -> None:
            got.append(await read_events(http, path(sid, "sse"), stop_after=3, heartbeat=heartbeat))

        nursery.start_soon(listen)
        await heartbeat.wait()  # the stream is open and idle; now a run starts
        await start(http, sid)
    events, comments = got[0]
    assert ": heartbeat" in comments
    assert [e["data"]["type"] for e in events][:1] == ["run_started"]
    assert_consecutive([e["data"] for e in events], 1)


async def test_sse_of_an_idle_session_with_follow_false_ends_at_once(http: httpx.AsyncClient, sid: str):
    events, comments = await read_events(http, f"{path(sid, 'sse')}?follow=false")
    assert events == [] and comments == [": connected"]


async def test_bad_last_event_id_is_400(http: httpx.AsyncClient, sid: str):
    response = await http.get(path(sid, "sse"), headers={"Last-Event-ID": "ten"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
