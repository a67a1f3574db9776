"""Authorization on every route: with an ``authorize`` hook configured (the ``strict`` profile of
:mod:`.served`: a bearer token bound to the user who started the session; ``/metrics`` needs a token too;
only ``/healthz`` is public), every route refuses a request without valid credentials.

``tests/server/test_hooks.py`` walks the built-in route table (``ROUTES``) of a server whose hook leaves
``/metrics`` open. This walks the Quart ``url_map`` of the app itself: every rule and every method it
accepts, the session rule expanded into every built-in route and every custom endpoint. A rule this file
does not know gets a generic request that must be refused with a 401 too, so a new route added without
going through ``authorize`` fails the suite.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from helix.server.routes import ROUTES, WEBSOCKET_ROUTE
from stores import file_for_name
from tests.server.support import path, wait_done

from .process import Served
from .served import build

APP = build("strict")  # never served here: only its url_map and endpoints are read
ALICE = {"Authorization": "Bearer token-alice"}
BOB = {"Authorization": "Bearer token-bob"}
NO_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic dG9rZW4tYWxpY2U6"},
    {"Authorization": "token-alice"},
    {"Authorization": "Bearer " + "x" * 8000},
]
PUBLIC = {"healthz"}  # liveness, by design: answers {"status": "ok"} and nothing else
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def rule_cases() -> list[Any]:
    cases = []
    for rule in APP.app.url_map.iter_rules():
        methods = ["GET"] if rule.websocket else sorted(rule.methods or ())
        for method in methods:
            kind = "websocket" if rule.websocket else method
            gap = KNOWN_GAPS.get((rule.endpoint, method))
            marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
            cases.append(
                pytest.param(rule.endpoint, rule.rule, kind, id=f"{rule.endpoint}-{kind}", marks=marks)
            )
    return cases


@pytest.fixture(scope="module")
def owned(strict: Served) -> str:
    """A session alice started (and so owns), with a finished run."""
    sid = f"owned-{uuid.uuid4().hex[:8]}"
    trio.run(_alice_starts, strict.base_url, sid)
    return sid


async def _alice_starts(base_url: str, sid: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=ALICE) as alice:
        response = await alice.post(
            path(sid, "start"), json={"agentType": "worker", "input": {"message": "hi"}}
        )
        assert response.status_code == 202, response.text
        await wait_done(alice, sid)


@pytest.fixture
async def http(strict: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=strict.base_url, timeout=20.0) as client:
        yield client


def assert_unauthorized(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, (what, response.status_code, response.text[:300])
    assert response.headers["www-authenticate"] == "Bearer", what
    if response.request.method != "HEAD":
        assert response.json()["error"]["code"] == "unauthorized", what


def session_requests(method: str) -> list[tuple[str, str]]:
    """``(route, query)`` of every session route that serves ``method``: built-ins and custom endpoints."""
    routes = [
        (name, "follow=false" if name == "sse" else "") for name, r in ROUTES.items() if method in r.methods
    ]
    routes += [(key.lstrip("/"), "") for key in APP.services.endpoints]  # custom endpoints take any method
    return routes


@pytest.mark.parametrize(("endpoint", "rule", "kind"), rule_cases())
async def test_every_rule_of_the_app_refuses_a_request_without_credentials(
    strict: Served, http: httpx.AsyncClient, owned: str, endpoint: str, rule: str, kind: str
):
    view_before = await _view(http, owned)
    stranger = f"fresh-{uuid.uuid4().hex[:8]}"
    if endpoint in PUBLIC:
        response = await http.request(kind, rule)
        assert response.status_code == 200 and (kind != "GET" or response.json() == {"status": "ok"})
        return
    if endpoint == "session_ws":
        for headers in NO_CREDENTIALS:
            for sid in (owned, stranger):
                url = f"{strict.ws_base}/sessions/{quote(sid, safe='')}/{WEBSOCKET_ROUTE}"
                extra = [(k.encode(), v.encode()) for k, v in headers.items()]
                with pytest.raises(ConnectionRejected) as rejected:
                    async with open_websocket_url(url, extra_headers=extra):
                        pass
                assert rejected.value.status_code == 401, headers
                assert json.loads(rejected.value.body or b"")["error"]["code"] == "unauthorized"
    elif endpoint == "session":
        requests = session_requests(kind)
        assert requests, f"{kind} on {rule} reaches no route"
        for route, query in requests:
            for sid in (owned, stranger):
                for headers in NO_CREDENTIALS:
                    target = f"{path(sid, route)}{'?' + query if query else ''}"
                    body = json.dumps({"agentType": "worker", "input": {"message": "intruder"}})
                    response = await http.request(kind, target, content=body, headers=headers)
                    assert_unauthorized(response, f"{kind} {route} {headers}")
        for route in ROUTES:  # a method a built-in route does not serve is a 405 (before authorize)
            if kind not in ROUTES[route].methods and f"/{route}" not in APP.services.endpoints:
                response = await http.request(kind, path(owned, route))
                assert response.status_code == 405, (kind, route, response.text)
    else:  # /metrics, and any rule added later: a generic request must be refused
        target = re.sub(r"<[^>]+>", "probe", rule)
        for headers in NO_CREDENTIALS:
            assert_unauthorized(await http.request(kind, target, headers=headers), f"{kind} {rule} {headers}")
    assert not file_for_name(strict.data_dir, stranger).exists()  # refused before anything was created
    assert await _view(http, owned) == view_before  # and the owner's session is untouched


async def _view(http: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    view = {}
    for name in ("status", "history", "messages", "checkpoints"):
        response = await http.get(path(sid, name), headers=ALICE)
        assert response.status_code == 200, response.text
        view[name] = response.json()
    return view


def test_the_walk_covers_every_built_in_route_custom_endpoint_and_transport():
    """The expansion above reaches everything the issue names: start, resume, retry, interrupt, abort,
    status, history, messages, usage, snapshot, checkpoints, SSE, WebSocket, custom endpoints, metrics."""
    endpoints = {rule.endpoint for rule in APP.app.url_map.iter_rules()}
    assert {"session", "session_ws", "metrics", "healthz"} <= endpoints
    reached = {route for method in ("GET", "POST", "PUT", "DELETE") for route, _ in session_requests(method)}
    assert reached >= {*ROUTES, "notes", "deep/report"}
    assert set(ROUTES) >= {
        "start", "resume", "retry", "interrupt", "abort", "status", "history",
        "messages", "usage", "snapshot", "checkpoints", "sse",
    }  # fmt: skip


async def test_the_owner_gets_through_and_another_user_is_forbidden(
    strict: Served, http: httpx.AsyncClient, owned: str
):
    """The hook is a gate, not a wall: the same walk with the owner's token passes authorize on every
    route (no 401 / 403), and with another user's token is refused with 403."""
    alice = httpx.AsyncClient(base_url=strict.base_url, headers=ALICE, timeout=20.0)
    async with alice:
        await _owner_walk(http, alice, owned)
    url = f"{strict.ws_base}/sessions/{quote(owned, safe='')}/ws?fromSeq=1"
    async with open_websocket_url(url, extra_headers=[(b"authorization", b"Bearer token-alice")]) as ws:
        assert json.loads(await ws.get_message())["type"] == "run_started"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(url, extra_headers=[(b"authorization", b"Bearer token-bob")]):
            pass
    assert rejected.value.status_code == 403
    assert (await http.get("/metrics", headers=BOB)).status_code == 200


async def _owner_walk(http: httpx.AsyncClient, alice: httpx.AsyncClient, owned: str) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        for route, query in session_requests(method):
            target = f"{path(owned, route)}{'?' + query if query else ''}"
            body = (
                {"reason": "owner"} if route in ("interrupt", "abort") else {"options": {"mode": "continue"}}
            )
            if route == "start":
                body = {"agentType": "worker", "input": {"message": "again"}}
            forbidden = await http.request(method, target, json=body, headers=BOB)
            assert forbidden.status_code == 403, (method, route, forbidden.text)
            allowed = await alice.request(method, target, json=body)
            assert allowed.status_code not in (401, 403) and allowed.status_code < 500, (
                method,
                route,
                allowed.text,
            )
            if route in ("start", "resume", "retry"):
                await wait_done(alice, owned)
