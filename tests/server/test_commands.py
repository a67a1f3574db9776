"""Start, resume, retry, interrupt and abort over HTTP, through a real Hypercorn process."""

from __future__ import annotations

import httpx

from .support import history, path, start, wait_done, wait_status


async def test_start_answers_202_with_the_fixed_shape_and_the_first_seq_header(
    http: httpx.AsyncClient, sid: str
):
    response = await start(http, sid)
    body = response.json()
    assert list(body) == ["sessionId", "runId", "streamId", "status"]
    assert body["sessionId"] == sid and body["status"] == "started" and body["streamId"] == body["runId"]
    assert response.headers["Helix-First-Seq"] == "1"
    status = await wait_done(http, sid)
    assert status["status"] == "completed" and status["runId"] == body["runId"]
    assert (
        status["output"] == "All done."
        and status["stepCount"] == 3
        and status["checkpointId"].startswith("cpv1-")
    )


async def test_status_of_an_unknown_session_is_idle_and_creates_nothing(
    http: httpx.AsyncClient, sid, plain_server
):
    before = sorted(p.name for p in plain_server.data_dir.rglob("*.sqlite3"))
    response = await http.get(path(sid, "status"))
    assert response.status_code == 200
    assert response.json() == {
        "sessionId": sid,
        "status": "idle",
        "stepCount": 0,
        "isExecuting": False,
        "canResume": False,
    }
    assert sorted(p.name for p in plain_server.data_dir.rglob("*.sqlite3")) == before


async def test_snake_case_bodies_are_accepted_too(http: httpx.AsyncClient, sid: str):
    response = await http.post(path(sid, "start"), json={"agent_type": "worker", "input": {"message": "hi"}})
    assert response.status_code == 202
    assert (await wait_done(http, sid))["status"] == "completed"


async def test_a_follow_up_start_may_leave_out_the_agent_type(http: httpx.AsyncClient, sid: str):
    await start(http, sid)
    await wait_done(http, sid)
    response = await http.post(path(sid, "start"), json={"input": {"message": "and again"}})
    assert response.status_code == 202
    assert int(response.headers["Helix-First-Seq"]) > 1
    messages = (await http.get(path(sid, "messages"))).json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"][-1] == "and again"


async def test_first_start_without_agent_type_is_400_and_creates_no_run(http: httpx.AsyncClient, sid: str):
    response = await http.post(path(sid, "start"), json={"input": {"message": "hi"}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert (await http.get(path(sid, "status"))).json()["status"] == "idle"


async def test_unknown_agent_type_is_404_with_the_available_types(http: httpx.AsyncClient, sid: str):
    response = await http.post(path(sid, "start"), json={"agentType": "nobody"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "agent_not_found"
    assert set(error["availableTypes"]) >= {"worker", "slow"}
    assert (await http.get(path(sid, "status"))).json()["status"] == "idle"


async def test_start_while_running_is_409_and_interrupt_then_resume_continue_completes(
    http: httpx.AsyncClient, sid: str
):
    first = (await start(http, sid, agent="slow")).json()
    await wait_status(http, sid, lambda s: s["stepCount"] >= 1)
    again = await http.post(path(sid, "start"), json={"agentType": "slow"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_run_state"

    stopped = await http.post(path(sid, "interrupt"), json={"reason": "lunch"})
    assert stopped.status_code == 202
    assert stopped.json() == {"sessionId": sid, "runId": first["runId"], "status": "interrupted"}
    status = (await http.get(path(sid, "status"))).json()
    assert status["status"] == "interrupted" and status["canResume"] is True and not status["isExecuting"]
    terminal = [c for c in await history(http, sid) if c["runId"] == first["runId"]][-1]
    assert terminal["type"] == "run_interrupted" and terminal["reason"] == "lunch"

    resumed = await http.post(path(sid, "resume"), json={"options": {"mode": "continue"}})
    assert resumed.status_code == 202 and resumed.json()["status"] == "resumed"
    run_id = resumed.json()["runId"]
    first_chunk = (
        await http.get(path(sid, "history"), params={"fromSeq": resumed.headers["Helix-First-Seq"]})
    ).json()
    assert first_chunk["chunks"][0]["type"] == "run_resumed" and first_chunk["chunks"][0]["runId"] == run_id
    await http.post(path(sid, "abort"), json={})


async def test_interrupt_and_abort_are_409_when_nothing_runs(http: httpx.AsyncClient, sid: str):
    for route in ("interrupt", "abort"):
        response = await http.post(path(sid, route))
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "invalid_run_state"
    await start(http, sid)
    await wait_done(http, sid)
    assert (await http.post(path(sid, "interrupt"), json={})).status_code == 409


async def test_abort_fails_the_run_and_blocks_resume_with_a_reason(http: httpx.AsyncClient, sid: str):
    await start(http, sid, agent="slow")
    await wait_status(http, sid, lambda s: s["stepCount"] >= 1)
    aborted = await http.post(path(sid, "abort"), json={"reason": "user gave up"})
    assert aborted.status_code == 202 and aborted.json()["status"] == "failed"
    status = (await http.get(path(sid, "status"))).json()
    assert status["status"] == "failed" and status["canResume"] is False and status["resumeBlockedReason"]
    refused = await http.post(path(sid, "resume"), json={})
    assert refused.status_code == 409
    retried = await http.post(path(sid, "retry"), json={"options": {"mode": "from_checkpoint"}})
    assert retried.status_code == 202 and retried.json()["status"] == "resumed"
    await http.post(path(sid, "abort"), json={})


async def test_retry_reruns_a_failed_run(http: httpx.AsyncClient, sid: str):
    await start(http, sid, agent="failing")
    status = await wait_done(http, sid)
    assert status["status"] == "failed" and status["error"]["code"]
    retried = await http.post(path(sid, "retry"), json={"options": {"mode": "fromStart"}})
    assert retried.status_code == 202
    chunk = (
        await http.get(path(sid, "history"), params={"fromSeq": retried.headers["Helix-First-Seq"]})
    ).json()
    assert chunk["chunks"][0]["type"] == "run_resumed" and chunk["chunks"][0]["mode"] == "from_start"


async def test_time_travel_from_a_middle_checkpoint_branches_and_keeps_the_old_branch(
    http: httpx.AsyncClient, sid: str
):
    await start(http, sid)
    await wait_done(http, sid)
    checkpoints = (await http.get(path(sid, "checkpoints"))).json()["checkpoints"]
    assert [c["step"] for c in checkpoints] == [1, 2, 3]
    middle = checkpoints[0]
    old_messages = (await http.get(path(sid, "messages"))).json()["messages"]
    at_middle = (await http.get(path(sid, "messages"), params={"checkpointId": middle["id"]})).json()[
        "messages"
    ]
    assert at_middle == old_messages[: len(at_middle)] and len(at_middle) < len(old_messages)

    resumed = await http.post(
        path(sid, "resume"),
        json={
            "options": {
                "mode": "from_checkpoint",
                "checkpointId": middle["id"],
                "message": "take another path",
            }
        },
    )
    assert resumed.status_code == 202, resumed.text
    first = (
        await http.get(path(sid, "history"), params={"fromSeq": resumed.headers["Helix-First-Seq"]})
    ).json()
    assert first["chunks"][0]["type"] == "run_resumed" and first["chunks"][0]["checkpointId"] == middle["id"]
    assert (await wait_done(http, sid))["status"] == "completed"
    branch = (await http.get(path(sid, "messages"))).json()["messages"]
    assert branch[: len(at_middle)] == at_middle
    assert any(m["content"] == "take another path" for m in branch)
    # the old branch is still readable at its own checkpoint
    old_last = checkpoints[-1]["id"]
    assert (await http.get(path(sid, "messages"), params={"checkpointId": old_last})).json()[
        "messages"
    ] == old_messages


async def test_unknown_checkpoint_is_404_checkpoint_not_found_and_changes_nothing(
    http: httpx.AsyncClient, sid: str
):
    await start(http, sid)
    before = await wait_done(http, sid)
    for response in (
        await http.post(
            path(sid, "resume"), json={"options": {"mode": "branch", "checkpointId": "cpv1-nope"}}
        ),
        await http.get(path(sid, "messages"), params={"checkpointId": "cpv1-nope"}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "checkpoint_not_found"
    assert (await http.get(path(sid, "status"))).json() == before
