"""Error answers and bad input: every refusal is a JSON error with the right status, never a 500 or a
stack trace, and leaves the session as it was."""

from __future__ import annotations

import hashlib

import h11
import httpx
import pytest
import trio

from .conftest import ServerProcess
from .support import path, start, wait_done


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str)
    assert "Traceback" not in response.text
    return error


async def test_unknown_paths_are_404_not_found_json(http: httpx.AsyncClient, sid: str):
    assert_error(await http.get("/nope"), 404, "not_found")
    assert_error(await http.get(path(sid, "nope")), 404, "not_found")
    assert_error(await http.post("/sessions"), 404, "not_found")
    assert_error(await http.get(f"/sessions/{sid}"), 404, "not_found")


async def test_wrong_methods_are_405_with_an_allow_header(http: httpx.AsyncClient, sid: str):
    response = await http.get(path(sid, "start"))
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    assert_error(await http.delete(path(sid, "status")), 405, "method_not_allowed")
    assert_error(await http.post("/healthz", content=b"{}"), 405, "method_not_allowed")
    assert_error(await http.post(path(sid, "ws")), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"agentType": "worker", "input": {"message": NaN}}', "invalid JSON"),
        (b'{"agentType": "worker", "n": Infinity}', "invalid JSON"),
        (b'{"agentType": "worker", "n": 1e999}', "invalid JSON"),
        (b'{"agentType": "worker", "input": {"message": "\xff\xfe"}}', "UTF-8"),
        (b'{"agentType": "worker", "input": {"message": "\\ud800"}}', "surrogate"),
        (b"[1, 2]", "JSON object"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "nested"),
        (b"[" * 30_000 + b"]" * 30_000, "nested"),
    ],
)
async def test_bad_json_is_400_and_nothing_starts(
    http: httpx.AsyncClient, sid: str, body: bytes, fragment: str
):
    response = await http.post(path(sid, "start"), content=body)
    error = assert_error(response, 400, "invalid_request")
    assert fragment in error["message"]
    assert (await http.get(path(sid, "status"))).json()["status"] == "idle"


async def test_wrong_field_types_are_400_with_pydantic_details(http: httpx.AsyncClient, sid: str):
    response = await http.post(path(sid, "start"), json={"agentType": 5, "input": {"message": ["x"]}})
    error = assert_error(response, 400, "invalid_request")
    locations = {tuple(d["loc"]) for d in error["details"]}
    assert ("agentType",) in locations and ("input", "message") in locations
    assert all("input" not in d for d in error["details"])  # inputs are not echoed back
    bad_mode = await http.post(path(sid, "resume"), json={"options": {"mode": "sideways"}})
    assert_error(bad_mode, 400, "invalid_request")


async def test_unknown_fields_are_ignored(http: httpx.AsyncClient, sid: str):
    response = await http.post(path(sid, "start"), json={"agentType": "worker", "fromTheFuture": {"x": 1}})
    assert response.status_code == 202
    await wait_done(http, sid)


@pytest.mark.parametrize("query", ["fromSeq=-1", "fromSeq=abc", "fromSeq=1.5", "limit=0", "limit=%EF%BC%91"])
async def test_bad_query_parameters_are_400(http: httpx.AsyncClient, sid: str, query: str):
    assert_error(await http.get(f"{path(sid, 'history')}?{query}"), 400, "invalid_request")


async def test_history_limit_is_capped(http: httpx.AsyncClient, sid: str):
    await start(http, sid)
    await wait_done(http, sid)
    page = (await http.get(path(sid, "history"), params={"limit": 10**9})).json()
    assert page["hasMore"] is False and page["nextSeq"] == len(page["chunks"]) + 1


@pytest.mark.parametrize(
    "raw_id",
    ["x" * 257, "a%00b", "tab%09here", "new%0Aline", "%FF%FE", "%C3%28", ""],
)
async def test_invalid_session_ids_are_400(http: httpx.AsyncClient, raw_id: str):
    for response in (
        await http.get(f"/sessions/{raw_id}/status"),
        await http.post(f"/sessions/{raw_id}/start", json={"agentType": "worker"}),
    ):
        assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("raw_id", "decoded"),
    [
        ("a%2Fb", "a/b"),
        ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"),
        ("%2e%2e", ".."),
        ("caf%C3%A9%20%E2%98%95", "café ☕"),
        ("x" * 256, "x" * 256),
    ],
)
async def test_odd_but_printable_session_ids_are_opaque_and_never_reach_the_file_system(
    http: httpx.AsyncClient, plain_server: ServerProcess, raw_id: str, decoded: str
):
    response = await http.post(f"/sessions/{raw_id}/start", json={"agentType": "worker"})
    assert response.status_code == 202, response.text
    assert response.json()["sessionId"] == decoded
    status = await wait_done(http, decoded)
    assert status["sessionId"] == decoded and status["status"] == "completed"
    digest = hashlib.sha256(decoded.encode()).hexdigest()
    assert (plain_server.data_dir / digest[:2] / f"{digest}.sqlite3").exists()
    for file in plain_server.data_dir.rglob("*"):
        assert file.resolve().is_relative_to(plain_server.data_dir.resolve())


async def test_a_slash_in_a_session_id_is_one_session_not_a_path(http: httpx.AsyncClient, sid: str):
    await start(http, f"{sid}/status")
    await wait_done(http, f"{sid}/status")
    # the unencoded form is a different (unknown) route of session `sid`
    assert_error(await http.get(f"/sessions/{sid}/status/status"), 404, "not_found")
    assert (await http.get(path(sid, "status"))).json()["status"] == "idle"


async def test_body_over_the_limit_is_413_from_content_length(http: httpx.AsyncClient, sid: str):
    big = b"x" * (64 * 1024 + 1)
    error = assert_error(await http.post(path(sid, "start"), content=big), 413, "payload_too_large")
    assert error["details"] == {"limit": 64 * 1024}
    assert (await http.get(path(sid, "status"))).json()["status"] == "idle"


async def test_chunked_body_over_the_limit_is_413(http: httpx.AsyncClient, sid: str):
    async def chunks():
        for _ in range(20):
            yield b"y" * 8192

    assert_error(await http.post(path(sid, "start"), content=chunks()), 413, "payload_too_large")


async def _raw_exchange(
    port: int, requests: list[h11.Request | tuple[h11.Request, bytes]]
) -> list[tuple[int, bytes]]:
    """Send requests one after the other on ONE keep-alive connection; return (status, body) of each."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    answers: list[tuple[int, bytes]] = []
    async with stream:
        for item in requests:
            request, body = item if isinstance(item, tuple) else (item, b"")
            await stream.send_all(conn.send(request))
            if body:
                await stream.send_all(conn.send(h11.Data(data=body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            status, data = 0, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    with trio.fail_after(10):
                        conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    data += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise AssertionError("the server closed the keep-alive connection")
            answers.append((status, data))
            conn.start_next_cycle()
    return answers


def _post(target: str, body: bytes) -> tuple[h11.Request, bytes]:
    headers = [
        ("Host", "127.0.0.1"),
        ("Content-Length", str(len(body))),
        ("Content-Type", "application/json"),
    ]
    return h11.Request(method="POST", target=target, headers=headers), body


def _get(target: str) -> h11.Request:
    return h11.Request(method="GET", target=target, headers=[("Host", "127.0.0.1")])


async def test_refused_posts_keep_the_keep_alive_connection_usable(plain_server: ServerProcess, sid: str):
    body = b'{"agentType": "worker"}' + b" " * 10_000
    answers = await _raw_exchange(
        plain_server.port,
        [
            _post("/nowhere", body),  # 404
            _post(f"/sessions/{sid}/status", body),  # 405
            _post(f"/sessions/{sid}/interrupt", body),  # 409
            _post(f"/sessions/{sid}/start", b"x" * (64 * 1024 + 10)),  # 413
            _post(f"/sessions/{sid}/start", b"{bad"),  # 400
            _get("/healthz"),
        ],
    )
    assert [status for status, _ in answers] == [404, 405, 409, 413, 400, 200]
    assert answers[-1][1] == b'{"status":"ok"}'


async def test_healthz_and_metrics(http: httpx.AsyncClient, sid: str):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    await start(http, sid)
    await wait_done(http, sid)
    metrics = (await http.get("/metrics")).text
    lines = [line for line in metrics.splitlines() if not line.startswith("#")]
    for name in (
        "helix_live_actors ",
        "helix_actor_activations_total ",
        "helix_actor_evictions_total ",
        "helix_runs_active ",
        "helix_chunks_total ",
        "helix_websocket_connections ",
        "helix_chunk_commit_to_send_seconds_bucket",
    ):
        assert any(line.startswith(name) for line in lines), name
    chunks_total = float(next(line for line in lines if line.startswith("helix_chunks_total ")).split()[1])
    assert chunks_total > 0
