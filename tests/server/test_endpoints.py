"""Custom endpoints (the ``endpoints`` profile of ``served_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import ServerProcess
from .support import path


@pytest.fixture
async def custom(endpoints_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=endpoints_server.base_url, timeout=20.0) as client:
        yield client


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_a_custom_endpoint_answers_every_method_with_its_context(
    custom: httpx.AsyncClient, sid, method
):
    body = None if method in ("GET", "DELETE") else {"hello": [1, 2]}
    response = await custom.request(method, path(sid, "echo"), json=body)
    assert response.status_code == 200
    assert response.json() == {
        "method": method,
        "sessionId": sid,
        "isExecuting": False,
        "body": body,
        "env": {"profile": "endpoints"},
    }


async def test_a_custom_endpoint_is_checked_before_the_built_ins(custom: httpx.AsyncClient, sid: str):
    response = await custom.get(path(sid, "status"))
    assert response.status_code == 203
    assert response.json() == {"custom": True, "status": "idle"}
    assert response.headers["x-custom"] == "1"
    assert (await custom.get(path(sid, "checkpoints"))).json() == {"checkpoints": []}  # built-ins still serve


async def test_tuple_and_text_answers(custom: httpx.AsyncClient, sid: str):
    response = await custom.get(path(sid, "text"))
    assert response.status_code == 200 and response.text == "plain text"
    assert response.headers["content-type"].startswith("text/plain")


async def test_a_failing_endpoint_is_a_500_without_internals(custom: httpx.AsyncClient, sid: str):
    response = await custom.get(path(sid, "broken"))
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert "secret" not in response.text


async def test_custom_endpoints_check_the_session_id_and_strict_json(custom: httpx.AsyncClient, sid: str):
    assert (await custom.get("/sessions/a%00b/echo")).status_code == 400
    response = await custom.post(path(sid, "echo"), content=b'{"x": NaN}')
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
