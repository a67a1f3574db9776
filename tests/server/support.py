"""Helpers the server tests share."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import trio
import trio_websocket

TERMINAL = {"run_completed", "run_failed", "run_interrupted"}


def path(sid: str, route: str) -> str:
    return f"/sessions/{quote(sid, safe='').replace('.', '%2E')}/{route}"


async def start(
    http: httpx.AsyncClient, sid: str, agent: str = "worker", message: str = "hi", **extra: Any
) -> Any:
    response = await http.post(
        path(sid, "start"), json={"agentType": agent, "input": {"message": message}, **extra}
    )
    assert response.status_code == 202, response.text
    return response


async def wait_status(
    http: httpx.AsyncClient, sid: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
) -> dict[str, Any]:
    """Poll ``/status`` until ``predicate`` holds (bounded by ``timeout``)."""
    with trio.fail_after(timeout):
        while True:
            body: dict[str, Any] = (await http.get(path(sid, "status"))).json()
            if predicate(body):
                return body
            await trio.sleep(0.02)


async def wait_done(http: httpx.AsyncClient, sid: str, timeout: float = 20.0) -> dict[str, Any]:
    return await wait_status(http, sid, lambda s: "runId" in s and not s["isExecuting"], timeout)


async def history(http: httpx.AsyncClient, sid: str, from_seq: int = 1) -> list[dict[str, Any]]:
    """Every chunk from ``from_seq``, following pages."""
    chunks: list[dict[str, Any]] = []
    while True:
        page = (await http.get(path(sid, "history"), params={"fromSeq": from_seq})).json()
        chunks += page["chunks"]
        if not page["hasMore"]:
            return chunks
        from_seq = page["nextSeq"]


async def ws_collect_until_terminal(
    ws: trio_websocket.WebSocketConnection, run_id: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Chunk frames until a terminal chunk (of ``run_id`` if given) or ``limit`` chunks."""
    out: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await ws.get_message())
        if "seq" not in frame:
            continue
        out.append(frame)
        if frame["type"] in TERMINAL and (run_id is None or frame["runId"] == run_id):
            return out
        if limit is not None and len(out) >= limit:
            return out


async def ws_next_control(ws: trio_websocket.WebSocketConnection) -> dict[str, Any]:
    """The next frame that is not a chunk (an ack or an error)."""
    while True:
        frame: dict[str, Any] = json.loads(await ws.get_message())
        if frame.get("type") in ("ack", "error"):
            return frame


def assert_consecutive(chunks: list[dict[str, Any]], first: int) -> None:
    seqs = [c["seq"] for c in chunks]
    assert seqs == list(range(first, first + len(chunks))), seqs
