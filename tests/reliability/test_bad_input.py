"""Bad input on every endpoint, through a real Hypercorn process, as an adversary would send it.

Extends ``tests/server/test_errors.py`` (which checks fixed examples on ``/start``) and
``tests/server/test_websocket.py`` (fixed bad command frames, one oversized text frame) with
hypothesis-generated attacks on every command route, custom endpoints, read routes' queries, session ids
and WebSocket frames, and with raw bytes that httpx and trio-websocket would never send.

Each attack must be refused with a 4xx JSON error ``{"error": {"code", "message"}}`` (or a WebSocket error
frame, or the connection closed), or accepted as an opaque session id; never a 5xx; the server logs no
traceback; nothing is written outside the data dir (the server's working directory is a temporary "jail"
whose tree is compared before and after); and ``victim``, a session with history before the attacks, has
identical status, history, messages, checkpoints, usage and snapshot afterwards.

Hypercorn itself answers a request line it cannot parse (a raw NUL, space or non-ASCII byte in the
target) with a bare 400 before the app sees it; those are checked for the 4xx only.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionRejected, open_websocket_url

from helix.server.routes import ROUTES
from stores import file_for_name
from tests.server.support import path, wait_done

from .attacks import (
    ACTIONS,
    JSON,
    OBJECTS,
    broken_command,
    hostile_command,
    is_json,
    raw_attack,
    raw_request,
    raw_websocket,
    ws_frame,
)
from .checks import check_runs, check_status_agrees
from .conftest import jail_of
from .process import Served
from .served import MAX_BODY, MAX_FRAME

SCALE = float(os.environ.get("HELIX_ATTACK_SCALE", "1"))  # e.g. 20 for a long hunt; 1 keeps the suite quick


def examples(count: int) -> int:
    return max(1, int(count * SCALE))


ATTACK_SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
READS = ["status", "history", "messages", "checkpoints", "usage", "snapshot"]


@dataclass(frozen=True, kw_only=True)
class Victim:
    sid: str
    baseline: dict[str, Any]


def session_view(client: httpx.Client, sid: str) -> dict[str, Any]:
    """Everything a client can read about a session (``history``: every chunk, following pages)."""
    view: dict[str, Any] = {}
    for name in READS:
        if name == "history":
            view[name] = full_history(client, sid)
            continue
        response = client.get(path(sid, name))
        assert response.status_code == 200, response.text
        view[name] = response.json()
    return view


def full_history(client: httpx.Client, sid: str) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    next_seq = 1
    while True:
        response = client.get(path(sid, "history"), params={"fromSeq": next_seq})
        assert response.status_code == 200, response.text
        page = response.json()
        chunks += page["chunks"]
        if not page["hasMore"]:
            return chunks
        next_seq = page["nextSeq"]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_json_error(response: httpx.Response | Any, *codes: str) -> dict[str, Any]:
    """A 4xx JSON error, with one of ``codes`` when given."""
    status = response.status_code if isinstance(response, httpx.Response) else response.status
    text = response.text if isinstance(response, httpx.Response) else response.body.decode()
    assert 400 <= status < 500, (status, text[:500])
    assert "Traceback" not in text
    error = json.loads(text)["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    assert not codes or error["code"] in codes, (error, codes)
    return error


@pytest.fixture(scope="module")
def client(plain: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plain.base_url, timeout=30.0) as http:
        yield http


@pytest.fixture(scope="module")
def victim(plain: Served, client: httpx.Client) -> Victim:
    sid = f"victim-{uuid.uuid4().hex[:8]}"
    response = client.post(path(sid, "start"), json={"agentType": "worker", "input": {"message": "hello"}})
    assert response.status_code == 202, response.text
    trio.run(_wait_done, plain.base_url, sid)
    return Victim(sid=sid, baseline=session_view(client, sid))


async def _wait_done(base_url: str, sid: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        await wait_done(http, sid)


@pytest.fixture(autouse=True)
def guard(plain: Served) -> Iterator[None]:
    """Around every test: no file appears outside the data dir, no traceback reaches the server log."""
    jail = jail_of(plain)
    before = tree(jail)
    log_at = len(plain.log())
    yield
    outside = {p for p in tree(jail) - before if not p.startswith("data")}
    assert not outside, f"files outside the data dir: {sorted(outside)[:10]}"
    logged = plain.log()[log_at:]
    assert "Traceback" not in logged and "unhandled error" not in logged, logged[-3000:]
    assert plain.alive()


def test_generated_bodies_that_cannot_be_valid_are_refused_and_change_nothing(
    client: httpx.Client, victim: Victim
):
    """Wrong types, missing and unknown fields, too-long strings, unknown agents and checkpoints, NaN and
    Infinity, numbers out of range, invalid UTF-8, lone surrogates, deep nesting, truncated JSON, a BOM,
    non-objects, binary and oversized bodies, on every command route of a session with history."""

    @ATTACK_SETTINGS
    @given(attack=broken_command() | raw_attack(), route=st.sampled_from(ACTIONS))
    def attack(attack: tuple[str, Any], route: str) -> None:
        name, body = attack
        if isinstance(body, bytes):  # a raw body goes to any route
            response = client.post(path(victim.sid, route), content=body)
            assert_json_error(response, "invalid_request", "payload_too_large")
        else:  # a broken command goes to its own route
            response = client.post(path(victim.sid, name), json=body)
            assert_json_error(response)
        assert client.get(path(victim.sid, "status")).json() == victim.baseline["status"]

    attack()
    assert session_view(client, victim.sid) == victim.baseline


def test_raw_attacks_on_a_custom_endpoint_are_400_and_json_is_echoed(client: httpx.Client, victim: Victim):
    """``ctx.json()`` of a custom endpoint parses as strictly as the built-ins (any JSON value is fine)."""

    @ATTACK_SETTINGS
    @given(
        attack=raw_attack().filter(lambda a: not is_json(a[1])),
        method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]),
    )
    def attack(attack: tuple[str, bytes], method: str) -> None:
        _kind, body = attack
        response = client.request(method, path(victim.sid, "echo"), content=body)
        assert_json_error(response, "invalid_request", "payload_too_large")

    @settings(max_examples=examples(30), deadline=None)
    @given(value=JSON)
    def echo(value: Any) -> None:
        response = client.post(path(victim.sid, "echo"), content=json.dumps(value).encode())
        assert response.status_code == 200, response.text
        assert response.json() == {"body": value}

    attack()
    echo()
    assert session_view(client, victim.sid) == victim.baseline


def test_generated_json_on_every_command_never_fails_the_server_or_corrupts_history(
    client: httpx.Client, plain: Served, sid: str
):
    """Any JSON object, and well-formed commands with hostile content (odd states, deep nesting near the
    limit, odd messages, long texts), on any command route of a session with history: 202 or a 4xx JSON
    error, never a 5xx; afterwards every run has exactly one end, the history is valid, and its earlier
    chunks and the conversation at its earlier checkpoint are unchanged."""
    response = client.post(path(sid, "start"), json={"agentType": "worker", "input": {"message": "first"}})
    assert response.status_code == 202
    trio.run(_wait_done, plain.base_url, sid)
    before = session_view(client, sid)
    checkpoint = before["status"]["checkpointId"]
    messages_then = client.get(path(sid, "messages"), params={"checkpointId": checkpoint}).json()
    assert messages_then == before["messages"]
    agent_type = st.sampled_from(["worker", "quick"]) | st.text(max_size=8) | JSON
    shapeless = (
        OBJECTS
        | st.fixed_dictionaries({"agentType": agent_type}, optional={"input": JSON | OBJECTS, "extra": JSON})
        | st.fixed_dictionaries({"options": JSON | OBJECTS}, optional={"agentType": agent_type})
    )
    commands = st.tuples(st.sampled_from(ACTIONS), shapeless) | hostile_command()
    statuses: set[int] = set()

    @ATTACK_SETTINGS
    @given(command=commands)
    def attack(command: tuple[str, dict[str, Any]]) -> None:
        route, body = command
        response = client.post(path(sid, route), json=body)
        statuses.add(response.status_code)
        if response.status_code != 202:
            assert_json_error(response)

    attack()
    trio.run(_wait_done, plain.base_url, sid)
    after = session_view(client, sid)
    chunks = after["history"]
    check_status_agrees(sid, after["status"], check_runs(sid, chunks))
    assert chunks[: len(before["history"])] == before["history"]
    assert client.get(path(sid, "messages"), params={"checkpointId": checkpoint}).json() == messages_then
    assert statuses - {202} and statuses <= {202, 400, 404, 409}, statuses


def expected_valid(session_id: str) -> bool:
    """The documented rule: 1-256 printable characters."""
    return 1 <= len(session_id) <= 256 and session_id.isprintable()


SESSION_IDS = (
    st.text(max_size=300)
    | st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
    | st.sampled_from(
        [
            "../../etc/passwd",
            "..",
            ".",
            "/",
            "/etc/passwd",
            "..\\..\\windows\\win.ini",
            "%2e%2e",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "a\x00b",
            "\x00",
            "x" * 10_000,
            "x" * 256,
            "x" * 257,
            "CON",
            "nul.txt",
            "~root",
            "$HOME",
            "名前",
            "🦀🦀",
            "مرحبا",
            "e\u0301",
            "👩\u200d💻",
            "a\u2028b",
            "\ufeffbom",
            " ",
            "tab\there",
        ]
    )
)


def test_generated_session_ids_are_refused_or_opaque_and_never_name_a_file(
    client: httpx.Client, plain: Served
):
    """Any session id, percent-encoded into the path: a 400 ``invalid_request`` unless it is 1-256
    printable characters; then it is accepted as is (a start answers with exactly that ``sessionId``) and
    its file is named by its sha256 inside the data dir, whatever the id says."""
    data_dir = plain.data_dir

    @settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(session_id=SESSION_IDS, route=st.sampled_from(["start", *READS]))
    def attack(session_id: str, route: str) -> None:
        target = path(session_id, route)
        if route == "start":
            response = client.post(target, json={"agentType": "worker", "input": {"message": "hi"}})
        else:
            response = client.get(target)
        if not expected_valid(session_id):
            assert_json_error(response, "invalid_request")
            return
        assert response.status_code in (200, 202, 409), response.text
        if route in ("start", "status") and response.status_code != 409:
            assert response.json()["sessionId"] == session_id
        if route == "start":
            assert file_for_name(data_dir, session_id).exists()

    attack()
    for file in data_dir.rglob("*"):
        assert file.resolve().is_relative_to(data_dir.resolve()), file


SESSION_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.sqlite3(-wal|-shm|-journal)?")


@pytest.mark.parametrize(
    ("target", "expect"),
    [
        # percent-encoded: one opaque path segment, hashed into a file name
        (b"/sessions/..%2F..%2Fetc%2Fpasswd/start", "opaque"),
        (b"/sessions/%2e%2e/start", "opaque"),
        (b"/sessions/%2E%2E%2F%2E%2E%2F%2E%2E%2Ftmp%2Fpwned/start", "opaque"),
        (b"/sessions/..%5C..%5Cwindows/start", "opaque"),
        (b"/sessions/%252e%252e/start", "opaque"),
        # unencoded: the id is ".." and the rest an unknown route
        (b"/sessions/../../etc/passwd/start", "refused"),
        (b"/sessions/../../../../etc/passwd", "refused"),
        (b"/sessions/%2e%2e/%2e%2e/start", "refused"),
        # not an id: NUL, too long, not UTF-8
        (b"/sessions/a%00b/start", "refused"),
        (b"/sessions/%00/start", "refused"),
        (b"/sessions/" + b"x" * 10_000 + b"/start", "refused"),
        (b"/sessions/%C0%AF/start", "refused"),
        (b"/sessions/%ED%A0%80/start", "refused"),
        # raw bytes Hypercorn's HTTP parser refuses before the app
        (b"/sessions/a\x00b/start", "unparsable"),
        (b"/sessions/a b/start", "unparsable"),
        (b"/sessions/caf\xc3\xa9/start", "unparsable"),
        (b"/sessions/\xff/start", "unparsable"),
        (b"/sessions/\x1b[31m/start", "unparsable"),
    ],
)
async def test_raw_hostile_targets_are_refused_or_opaque_and_create_nothing_else(
    plain: Served, target: bytes, expect: str
):
    before = tree(plain.data_dir)
    answer = await raw_request(plain.port, target, b"POST", b'{"agentType": "worker"}')
    created = tree(plain.data_dir) - before
    if expect == "opaque":
        assert answer.status == 202, answer
        session_id = json.loads(answer.body)["sessionId"]
        assert session_id == unquote(target.decode().split("/")[2])
        assert file_for_name(plain.data_dir, session_id).exists()
        assert all(SESSION_FILE.fullmatch(p) or len(p) == 2 for p in created), created
    else:
        if expect == "refused":
            assert_json_error(answer, "invalid_request", "not_found")
        else:
            assert answer.status == 400, answer  # Hypercorn's own answer to an unparsable request line
        assert not created, created


def test_generated_query_parameters_of_the_read_routes_are_answered_or_400(
    client: httpx.Client, victim: Victim
):
    values = (
        st.text(max_size=30)
        | st.integers(-5, 10**20).map(str)
        | st.sampled_from(["", "1e3", "0x10", "\u0661"])
    )

    @settings(max_examples=examples(60), deadline=None)
    @given(
        route=st.sampled_from(["history", "messages", "sse"]),
        params=st.dictionaries(
            st.sampled_from(["fromSeq", "from_seq", "limit", "checkpointId", "x"]), values
        ),
        last_event_id=st.none() | values,
    )
    def attack(route: str, params: dict[str, str], last_event_id: str | None) -> None:
        headers = {}
        if route == "sse":
            params = {**params, "follow": "false"}
            if last_event_id is not None and last_event_id.isascii() and last_event_id.isprintable():
                headers["Last-Event-ID"] = last_event_id
        response = client.get(path(victim.sid, route), params=params, headers=headers)
        if response.status_code != 200:
            assert_json_error(response, "invalid_request", "checkpoint_not_found")

    attack()
    assert session_view(client, victim.sid) == victim.baseline


@pytest.mark.parametrize(("route", "method"), [(r, m) for r, route in ROUTES.items() for m in route.methods])
def test_a_body_over_the_limit_is_413_on_every_route(
    client: httpx.Client, victim: Victim, route: str, method: str
):
    over = b"{" + b" " * MAX_BODY + b"}"
    assert_json_error(client.request(method, path(victim.sid, route), content=over), "payload_too_large")
    assert_json_error(client.request("PUT", path(victim.sid, "echo"), content=over), "payload_too_large")
    assert client.get(path(victim.sid, "status")).json() == victim.baseline["status"]


# -- WebSocket -------------------------------------------------------------------------------------

WS_FRAMES = (
    broken_command().map(lambda c: ("text", json.dumps({**c[1], "type": c[0]})))
    | st.tuples(st.just("text"), st.text(max_size=200).filter(lambda t: not _json_object(t)))
    | st.tuples(st.just("text"), JSON.filter(lambda v: not isinstance(v, dict)).map(json.dumps))
    | st.tuples(st.just("text"), OBJECTS.map(lambda o: json.dumps({**o, "type": "dance"})))
    | st.tuples(st.just("binary"), st.binary(max_size=300))
)


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def test_generated_websocket_frames_get_error_frames_and_the_socket_stays_open(
    plain: Served, victim: Victim, client
):
    url = f"{plain.ws_base}/sessions/{quote(victim.sid, safe='')}/ws?fromSeq=1000000"

    @settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(frames=st.lists(WS_FRAMES, min_size=1, max_size=6))
    def attack(frames: list[tuple[str, str | bytes]]) -> None:
        trio.run(_send_frames, url, frames)

    attack()
    assert session_view(client, victim.sid) == victim.baseline


async def _send_frames(url: str, frames: list[tuple[str, str | bytes]]) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(url) as ws:
            for _kind, frame in frames:
                await ws.send_message(frame)
                answer = json.loads(await ws.get_message())
                assert answer["type"] == "error" and "seq" not in answer, answer
                assert 400 <= answer["httpStatus"] < 500, answer
                error = answer["error"]
                assert isinstance(error["code"], str) and isinstance(error["message"], str), answer
            await ws.send_message(json.dumps({"type": "interrupt", "id": "still-open?"}))
            probe = json.loads(await ws.get_message())
            assert probe["id"] == "still-open?" and probe["error"]["code"] == "invalid_run_state", probe


PROTOCOL_VIOLATIONS = {
    "invalid UTF-8 in a text frame": [ws_frame(0x1, b'{"type": "interrupt", "reason": "\xff\xfe"}')],
    "an unmasked client frame": [ws_frame(0x1, b'{"type": "interrupt"}', mask=False)],
    "reserved bits set": [ws_frame(0x1, b'{"type": "interrupt"}', rsv=0b100)],
    "a ping over 125 bytes": [ws_frame(0x9, b"p" * 200)],
    "a fragmented ping": [ws_frame(0x9, b"p", fin=False)],
    "an unknown opcode": [ws_frame(0x3, b"??")],
    "a continuation without a start": [ws_frame(0x0, b"{}")],
    "a new message inside a fragmented one": [
        ws_frame(0x1, b'{"ty', fin=False),
        ws_frame(0x1, b'pe": "abort"}'),
    ],
    "a close with an invalid code": [ws_frame(0x8, (999).to_bytes(2, "big"))],
    "a close reason that is not UTF-8": [ws_frame(0x8, (1000).to_bytes(2, "big") + b"\xff")],
}


@pytest.mark.parametrize("frames", PROTOCOL_VIOLATIONS.values(), ids=PROTOCOL_VIOLATIONS.keys())
async def test_malformed_websocket_frames_close_the_connection_and_change_nothing(
    plain: Served, victim: Victim, frames: list[bytes]
):
    """Hypercorn (wsproto) fails the connection at once; it sends no close frame, or one with a
    protocol-error code. The server stays healthy and the session unchanged."""
    target = f"/sessions/{quote(victim.sid, safe='')}/ws?fromSeq=1000000"
    outcome = await raw_websocket(plain.port, target, frames)
    assert outcome.closed_by_server, outcome
    assert outcome.close_code in (None, 1002, 1007), outcome
    assert not outcome.texts(), outcome  # no command was acted on
    async with httpx.AsyncClient(base_url=plain.base_url) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get(path(victim.sid, "status"))).json() == victim.baseline["status"]


async def test_oversized_websocket_messages_are_refused(plain: Served, victim: Victim):
    """A text message over ``max_ws_frame_bytes`` sent in fragments closes with 1009; a binary one is
    answered with an error frame (binary is never accepted)."""
    target = f"/sessions/{quote(victim.sid, safe='')}/ws?fromSeq=1000000"
    half = b"x" * (MAX_FRAME // 2 + 1)
    fragmented = await raw_websocket(
        plain.port, target, [ws_frame(0x1, half, fin=False), ws_frame(0x0, half)]
    )
    assert fragmented.close_code == 1009 and fragmented.closed_by_server, fragmented
    binary = await raw_websocket(plain.port, target, [ws_frame(0x2, b"\x00" * (MAX_FRAME + 1))], wait=1.0)
    if binary.close_code is None:
        (error,) = binary.texts()
        assert error["type"] == "error" and error["httpStatus"] == 400, error
    else:
        assert binary.close_code == 1009, binary
    async with httpx.AsyncClient(base_url=plain.base_url) as http:
        assert (await http.get(path(victim.sid, "status"))).json() == victim.baseline["status"]


async def test_hostile_session_ids_at_the_websocket_handshake(plain: Served):
    for raw in ["a%00b", "x" * 10_000, "%FF", "tab%09"]:
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(f"{plain.ws_base}/sessions/{raw}/ws"):
                pass
        assert refused.value.status_code == 400
        assert json.loads(refused.value.body or b"")["error"]["code"] == "invalid_request"
    fresh = uuid.uuid4().hex[:8]
    before = tree(plain.data_dir)
    for odd in [f"../../{fresh}/passwd", f"..{fresh}", f"名前 🦀 {fresh}"]:
        async with open_websocket_url(
            f"{plain.ws_base}/sessions/{quote(odd, safe='').replace('.', '%2E')}/ws"
        ):
            pass
    created = tree(plain.data_dir) - before  # opaque ids: at most their own hashed files
    assert all(SESSION_FILE.fullmatch(p) or len(p) == 2 for p in created), created


REFUSED_ON_AN_UNKNOWN_SESSION = [
    ("interrupt", {}),
    ("abort", {"reason": "x"}),
    ("resume", {"agentType": "worker"}),
    ("retry", {}),
    ("resume", {"options": {"mode": "from_checkpoint", "checkpointId": "nope"}}),
    ("start", {"agentType": "ghost"}),
]


@pytest.mark.parametrize(("route", "body"), REFUSED_ON_AN_UNKNOWN_SESSION, ids=lambda v: str(v))
def test_a_refused_command_on_an_unknown_session_creates_no_file(
    client: httpx.Client, plain: Served, route: str, body: dict[str, Any]
):
    sid = f"never-started-{uuid.uuid4().hex[:8]}"
    assert_json_error(
        client.post(path(sid, route), json=body),
        "invalid_run_state",
        "agent_not_found",
        "checkpoint_not_found",
    )
    assert client.get(path(sid, "status")).json()["status"] == "idle"
    assert not file_for_name(plain.data_dir, sid).exists()
