"""The WebSocket: replay then live without gap or duplicate, commands with ack/error frames, limits."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from .conftest import ServerProcess
from .support import (
    assert_consecutive,
    history,
    path,
    start,
    wait_done,
    wait_status,
    ws_collect_until_terminal,
    ws_next_control,
)


def ws_url(server: ServerProcess, sid: str, query: str = "") -> str:
    return f"{server.ws_base}/sessions/{quote(sid, safe='')}/ws{'?' + query if query else ''}"


async def test_frames_are_exactly_the_history_chunks(
    plain_server: ServerProcess, http: httpx.AsyncClient, sid
):
    run_id = (await start(http, sid)).json()["runId"]
    async with open_websocket_url(ws_url(plain_server, sid, "fromSeq=1")) as ws:
        frames = []
        while not frames or json.loads(frames[-1])["type"] != "run_completed":
            frames.append(await ws.get_message())
    stored = (await http.get(path(sid, "history"))).text
    assert f"[{','.join(frames)}]" in stored  # byte for byte, ts included
    chunks = [json.loads(f) for f in frames]
    assert_consecutive(chunks, 1)
    assert chunks[0]["type"] == "run_started" and all(c["runId"] == run_id for c in chunks)


async def test_reconnecting_mid_run_with_from_seq_has_no_gap_and_no_duplicate(
    plain_server: ServerProcess, http: httpx.AsyncClient, sid: str
):
    run_id = (await start(http, sid, agent="chatty")).json()["runId"]
    seen: list[dict] = []
    for _ in range(4):  # three partial connections, then one to the end
        async with open_websocket_url(ws_url(plain_server, sid, f"fromSeq={len(seen) + 1}")) as ws:
            seen += await ws_collect_until_terminal(ws, run_id, limit=25)
        if seen[-1]["type"] == "run_completed":
            break
    if seen[-1]["type"] != "run_completed":
        async with open_websocket_url(ws_url(plain_server, sid, f"fromSeq={len(seen) + 1}")) as ws:
            seen += await ws_collect_until_terminal(ws, run_id)
    assert_consecutive(seen, 1)
    assert seen == await history(http, sid)


async def test_a_websocket_opened_before_any_run_gets_its_ack_then_the_whole_run(
    plain_server: ServerProcess, sid: str
):
    async with open_websocket_url(ws_url(plain_server, sid)) as ws:
        await ws.send_message(
            json.dumps({"type": "start", "id": 7, "agentType": "worker", "input": {"message": "go"}})
        )
        ack = json.loads(await ws.get_message())  # the answer comes before the run's first chunk
        assert ack["type"] == "ack" and ack["command"] == "start" and ack["id"] == 7
        assert ack["status"] == "started" and "seq" not in ack and ack["firstSeq"] == 1
        chunks = await ws_collect_until_terminal(ws, ack["runId"])
    assert chunks[0]["type"] == "run_started" and chunks[-1]["type"] == "run_completed"
    assert_consecutive(chunks, 1)


async def test_interrupt_and_resume_over_the_websocket(
    plain_server: ServerProcess, http: httpx.AsyncClient, sid
):
    async with open_websocket_url(ws_url(plain_server, sid)) as ws:
        await ws.send_message(json.dumps({"type": "start", "agentType": "slow"}))
        first = await ws_next_control(ws)
        await wait_status(http, sid, lambda s: s["stepCount"] >= 1)
        await ws.send_message(json.dumps({"type": "interrupt", "reason": "ws says stop"}))
        stopped = await ws_next_control(ws)
        assert stopped == {
            "type": "ack",
            "command": "interrupt",
            "sessionId": sid,
            "runId": first["runId"],
            "status": "interrupted",
        }
        await ws.send_message(json.dumps({"type": "resume", "options": {"mode": "continue"}}))
        resumed = await ws_next_control(ws)
        assert resumed["type"] == "ack" and resumed["status"] == "resumed"
        await ws.send_message(json.dumps({"type": "abort"}))
        assert (await ws_next_control(ws))["status"] == "failed"
    chunks = await history(http, sid)
    assert_consecutive(chunks, 1)
    terminals = [c for c in chunks if c["type"] in ("run_interrupted", "run_failed", "run_completed")]
    assert [(c["runId"], c["type"]) for c in terminals] == [
        (first["runId"], "run_interrupted"),
        (resumed["runId"], "run_failed"),
    ]
    assert terminals[0]["reason"] == "ws says stop"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{nope", "invalid_request"),
        ('{"type": "start", "x": NaN}', "invalid_request"),
        ("[1]", "invalid_request"),
        ('{"type": "dance"}', "invalid_request"),
        ('{"type": "start", "agentType": "ghost"}', "agent_not_found"),
        ('{"type": "interrupt"}', "invalid_run_state"),
        ('{"type": "resume", "options": {"mode": 3}}', "invalid_request"),
    ],
)
async def test_bad_commands_get_error_frames_and_the_socket_stays_open(
    plain_server: ServerProcess, sid: str, frame: str, code: str
):
    async with open_websocket_url(ws_url(plain_server, sid)) as ws:
        await ws.send_message(frame)
        error = await ws_next_control(ws)
        assert error["type"] == "error" and error["error"]["code"] == code and "seq" not in error
        await ws.send_message(b"\x00binary")
        binary = await ws_next_control(ws)
        assert binary["type"] == "error" and binary["httpStatus"] == 400
        await ws.send_message(json.dumps({"type": "start", "agentType": "worker"}))
        assert (await ws_next_control(ws))["type"] == "ack"


async def test_a_frame_over_the_limit_closes_with_1009(plain_server: ServerProcess, sid: str):
    async with open_websocket_url(ws_url(plain_server, sid)) as ws:
        await ws.send_message(json.dumps({"type": "start", "pad": "x" * 70_000}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.get_message()
    assert closed.value.reason.code == 1009


@pytest.mark.parametrize(
    ("url_tail", "status", "code"),
    [
        ("/sessions/ok/ws?fromSeq=-3", 400, "invalid_request"),
        ("/sessions/a%00b/ws", 400, "invalid_request"),
        ("/sessions/ok/nope", 404, "not_found"),
        ("/elsewhere", 404, "not_found"),
    ],
)
async def test_refused_handshakes_are_http_json_errors(plain_server: ServerProcess, url_tail, status, code):
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{plain_server.ws_base}{url_tail}"):
            pass
    assert rejected.value.status_code == status
    assert json.loads(rejected.value.body)["error"]["code"] == code


async def test_websockets_per_session_are_limited(endpoints_server: ServerProcess, sid: str):
    url = ws_url(endpoints_server, sid)
    async with open_websocket_url(url), open_websocket_url(url), open_websocket_url(url):
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(url):
                pass
        assert rejected.value.status_code == 429
        assert json.loads(rejected.value.body)["error"]["code"] == "too_many_connections"
    async with open_websocket_url(url):  # the count went down again
        pass


def metric(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(f"{name} ")).split()[1])


async def test_the_socket_stays_open_while_the_session_hibernates(new_server: ServerProcess, sid: str):
    new_server.env = {"HELIX_TEST_MAX_LIVE": "1"}
    new_server.start()
    other = f"{sid}-other"
    async with httpx.AsyncClient(base_url=new_server.base_url) as http:
        await start(http, sid)
        await wait_done(http, sid)
        async with open_websocket_url(ws_url(new_server, sid, "fromSeq=1")) as ws:
            replay = await ws_collect_until_terminal(ws)
            # another session takes the only live slot: this one is evicted while its socket is open
            await start(http, other)
            await wait_done(http, other)
            assert metric((await http.get("/metrics")).text, "helix_actor_evictions_total") >= 1
            await ws.send_message(json.dumps({"type": "start", "input": {"message": "again"}}))
            ack = await ws_next_control(ws)
            assert ack["type"] == "ack", ack
            more = await ws_collect_until_terminal(ws, ack["runId"])
        assert_consecutive(replay + more, 1)
        assert replay + more == await history(http, sid)
