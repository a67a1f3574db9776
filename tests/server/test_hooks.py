"""Hooks through a real server (the ``hooks`` profile of ``served_app``): bearer tokens bound to the
user who owns a session, refusals that leave the session untouched, the "superseded" interrupt,
transforms and ``on_complete``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from helix.server.routes import ROUTES, WEBSOCKET_ROUTE

from .conftest import ServerProcess
from .support import path, wait_done, wait_status, ws_next_control

ALICE = {"Authorization": "Bearer token-alice"}
BOB = {"Authorization": "Bearer token-bob"}


@pytest.fixture
async def hooked(hooks_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials (each request passes its own headers)."""
    async with httpx.AsyncClient(base_url=hooks_server.base_url, timeout=20.0) as client:
        yield client


@pytest.fixture
async def alice(hooks_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=hooks_server.base_url, timeout=20.0, headers=ALICE) as client:
        yield client


async def alice_starts(http: httpx.AsyncClient, sid: str, agent: str = "worker") -> dict:
    response = await http.post(path(sid, "start"), json={"agentType": agent}, headers=ALICE)
    assert response.status_code == 202, response.text
    body: dict = response.json()
    return body


async def test_every_route_refuses_a_request_without_credentials(
    hooked: httpx.AsyncClient, hooks_server, sid
):
    await alice_starts(hooked, sid)
    for name, route in [*ROUTES.items(), ("completed", None)]:
        for method in route.methods if route else ("GET",):
            response = await hooked.request(method, path(sid, name), json={"agentType": "worker"})
            assert response.status_code == 401, (name, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{hooks_server.ws_base}/sessions/{quote(sid)}/{WEBSOCKET_ROUTE}"):
            pass
    assert rejected.value.status_code == 401
    assert (await hooked.get(path(sid, "status"), headers=ALICE)).json()["runId"]


async def test_another_users_token_is_403_on_reads_streams_and_commands(hooked, hooks_server, sid: str):
    await alice_starts(hooked, sid)
    for name in ("status", "history", "messages", "checkpoints", "usage", "snapshot", "sse", "completed"):
        assert (await hooked.get(path(sid, name), headers=BOB)).status_code == 403, name
    for name in ("start", "resume", "retry", "interrupt", "abort"):
        assert (await hooked.post(path(sid, name), json={}, headers=BOB)).status_code == 403, name
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(
            f"{hooks_server.ws_base}/sessions/{quote(sid)}/ws",
            extra_headers=[(b"authorization", b"Bearer token-bob")],
        ):
            pass
    assert rejected.value.status_code == 403


async def test_the_owner_streams_over_the_websocket_with_a_token(hooked, alice, hooks_server, sid: str):
    run = await alice_starts(hooked, sid)
    await wait_done(alice, sid)
    url = f"{hooks_server.ws_base}/sessions/{quote(sid)}/ws?fromSeq=1"
    async with open_websocket_url(url, extra_headers=[(b"authorization", b"Bearer token-alice")]) as ws:
        first = json.loads(await ws.get_message())
        assert first["type"] == "run_started" and first["runId"] == run["runId"]


async def test_before_start_refusal_is_sent_exactly_and_the_session_is_untouched(
    hooked: httpx.AsyncClient, alice: httpx.AsyncClient, sid
):
    await alice_starts(hooked, sid)
    before = await wait_done(alice, sid)
    count = len((await hooked.get(path(sid, "history"), headers=ALICE)).json()["chunks"])
    response = await hooked.post(
        path(sid, "start"), json={"agentType": "worker", "metadata": {"refuse": True}}, headers=ALICE
    )
    assert response.status_code == 418
    assert response.json() == {"refused": True, "by": "before_start"}
    assert response.headers["x-refused"] == "yes"
    after = (await hooked.get(path(sid, "status"), headers=ALICE)).json()
    assert after == before
    assert len((await hooked.get(path(sid, "history"), headers=ALICE)).json()["chunks"]) == count


async def test_a_hook_that_raises_is_500_hook_failed_and_the_session_is_untouched(
    hooked: httpx.AsyncClient, sid
):
    response = await hooked.post(
        path(sid, "start"), json={"agentType": "worker", "metadata": {"explode": True}}, headers=ALICE
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "hook_failed" and "hook bug" not in response.text
    status = (await hooked.get(path(sid, "status"), headers=ALICE)).json()
    assert status["status"] == "idle" and "runId" not in status


async def test_a_new_start_supersedes_the_running_run(
    hooked: httpx.AsyncClient, alice: httpx.AsyncClient, sid: str
):
    first = await alice_starts(hooked, sid, agent="slow")
    await wait_status(alice, sid, lambda s: s["stepCount"] >= 1)
    second = await alice_starts(hooked, sid, agent="worker")
    assert second["runId"] != first["runId"]
    chunks = (await hooked.get(path(sid, "history"), headers=ALICE, params={"limit": 1000})).json()["chunks"]
    ended = [c for c in chunks if c["runId"] == first["runId"] and c["type"] == "run_interrupted"]
    assert len(ended) == 1 and ended[0]["reason"] == "superseded"
    assert (await wait_done(alice, sid))["runId"] == second["runId"]


async def test_transform_request_and_transform_response(
    hooked: httpx.AsyncClient, alice: httpx.AsyncClient, sid: str
):
    response = await hooked.post(
        path(sid, "start"), json={"agentType": "worker", "prompt": "via transform"}, headers=ALICE
    )
    assert response.status_code == 202
    status = await wait_done(alice, sid)
    assert status["owner"] == "alice"
    messages = (await alice.get(path(sid, "messages"))).json()["messages"]
    assert messages[0] == {"id": messages[0]["id"], "role": "user", "content": "via transform"}


async def test_before_resume_refusal_after_start_on_complete_and_the_usage_store(
    hooked: httpx.AsyncClient, alice: httpx.AsyncClient, sid: str
):
    run = await alice_starts(hooked, sid)
    await wait_done(alice, sid)
    refused = await alice.post(path(sid, "resume"), json={"options": {"message": "forbidden words"}})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "moderated"
    with trio.fail_after(10):
        while True:
            seen = (await alice.get(path(sid, "completed"))).json()
            if seen["completed"] and seen["usage"]:
                break
            await trio.sleep(0.02)
    assert seen["completed"] == [{"sessionId": sid, "runId": run["runId"], "status": "completed"}]
    assert seen["afterStarts"] == [{"sessionId": sid, "runId": run["runId"], "status": "started"}]
    assert seen["usage"] == [{"sessionId": sid, "runId": run["runId"], "kinds": ["llm", "tool"]}]


async def test_a_failing_after_hook_still_answers_202_with_the_run(alice: httpx.AsyncClient, sid: str):
    response = await alice.post(
        path(sid, "start"), json={"agentType": "worker", "metadata": {"explode_after": 1}}
    )
    assert response.status_code == 202
    assert (await wait_done(alice, sid))["runId"] == response.json()["runId"]


async def test_websocket_commands_are_authorized_and_refused_with_error_frames(
    hooked, alice, hooks_server, sid
):
    await alice_starts(hooked, sid)
    await wait_done(alice, sid)
    url = f"{hooks_server.ws_base}/sessions/{quote(sid)}/ws"
    async with open_websocket_url(url, extra_headers=[(b"authorization", b"Bearer token-alice")]) as ws:
        await ws.send_message(json.dumps({"type": "start", "id": "r1", "metadata": {"refuse": True}}))
        refused = await ws_next_control(ws)
        assert refused["type"] == "error" and refused["httpStatus"] == 418 and refused["id"] == "r1"
        assert refused["error"]["details"] == {"refused": True, "by": "before_start"}
        await ws.send_message(json.dumps({"type": "start", "metadata": {"explode": True}}))
        failed = await ws_next_control(ws)
        assert failed["error"]["code"] == "hook_failed" and failed["httpStatus"] == 500


async def test_metrics_can_be_left_open_by_authorize(hooked: httpx.AsyncClient):
    assert (await hooked.get("/metrics")).status_code == 200
    assert (await hooked.get("/healthz")).status_code == 200
