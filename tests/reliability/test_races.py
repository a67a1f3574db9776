"""Storms of concurrent commands on ONE session: 1,000 start / interrupt / abort / resume / retry commands
from 50 clients, over HTTP and over WebSocket commands, against the ``quick`` agent (runs of a few tens of
milliseconds, so completion races the commands too).

Each storm must finish within its deadline (no deadlock), every answer is a 202 or a 409
``invalid_run_state`` (never a 5xx), and afterwards, once the session settled:

- runs never overlapped: in ``/history`` every run is one contiguous block from its first chunk to its
  one terminal chunk (see :mod:`.checks`);
- the runs in history are exactly the runs the 202 answers of start / resume / retry named, each
  beginning as the command says (``run_started`` / ``run_resumed``);
- every 202 of interrupt / abort names a run whose terminal chunk agrees with the answered status;
- ``/status`` agrees with the last terminal chunk and ``isExecuting`` is false.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.server.support import history, path, wait_status

from .checks import TERMINAL_STATUS, check_runs, check_status_agrees
from .process import Served

CLIENTS = 50
COMMANDS_PER_CLIENT = 20  # 1,000 in all
STORM_DEADLINE = 90.0
SETTLE_TIMEOUT = 30.0
NO_CHUNKS = 10**14  # a fromSeq no session reaches: the connection gets answers, never chunks

WEIGHTS = {"start": 3, "interrupt": 2, "abort": 1, "resume": 3, "retry": 2}
NEW_RUN = {"start": "run_started", "resume": "run_resumed", "retry": "run_resumed"}

pytestmark = pytest.mark.slow  # a real server process and a 1,000-command storm


@dataclass(frozen=True, kw_only=True)
class Answer:
    action: str
    status: int
    body: dict[str, Any]


def plan(seed: int) -> list[list[tuple[str, dict[str, Any]]]]:
    """``CLIENTS`` lists of ``COMMANDS_PER_CLIENT`` commands with their bodies."""
    rng = random.Random(seed)
    actions = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    out = []
    for client in range(CLIENTS):
        commands = []
        for n in range(COMMANDS_PER_CLIENT):
            action = rng.choices(actions, weights)[0]
            body: dict[str, Any]
            if action == "start":
                body = {"agentType": "quick", "input": {"message": f"client {client} #{n}"}}
            elif action == "resume":
                body = rng.choice(
                    [
                        {"options": {"mode": "continue"}},
                        {"options": {"mode": "with_message", "message": "more"}},
                    ]
                )
            elif action == "retry":
                body = {"options": {"mode": rng.choice(["from_checkpoint", "from_start"])}}
            else:
                body = {"reason": f"storm {client} #{n}"}
            commands.append((action, body))
        out.append(commands)
    return out


def check_storm(
    sid: str, answers: list[Answer], status: dict[str, Any], chunks: list[dict[str, Any]]
) -> Counter:
    assert len(answers) == CLIENTS * COMMANDS_PER_CLIENT
    outcomes: Counter[str] = Counter()
    for answer in answers:
        assert answer.status in (202, 409), answer
        if answer.status == 409:
            assert answer.body["error"]["code"] == "invalid_run_state", answer
        outcomes[f"{answer.action} {answer.status}"] += 1
    spans = check_runs(sid, chunks)
    check_status_agrees(sid, status, spans)
    by_run = {span.run_id: span for span in spans}
    created = {a.body["runId"]: a for a in answers if a.status == 202 and a.action in NEW_RUN}
    assert set(created) == set(by_run), "the runs in history are not the runs the 202s named"
    for run_id, answer in created.items():
        assert by_run[run_id].first["type"] == NEW_RUN[answer.action], (answer, by_run[run_id].first)
    for answer in answers:
        if answer.status == 202 and answer.action in ("interrupt", "abort"):
            terminal = by_run[answer.body["runId"]].terminal
            assert terminal is not None and TERMINAL_STATUS[terminal["type"]] == answer.body["status"], (
                answer,
                terminal,
            )
            outcomes[f"{answer.action} -> {answer.body['status']}"] += 1
    # the storm really raced: every kind of command took effect at least once
    for action in WEIGHTS:
        assert outcomes[f"{action} 202"] >= 1, outcomes
    outcomes["runs"] = len(spans)
    return outcomes


async def settle(http: httpx.AsyncClient, sid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    status = await wait_status(http, sid, lambda s: not s["isExecuting"], timeout=SETTLE_TIMEOUT)
    return status, await history(http, sid)


async def test_an_http_storm_on_one_session_never_overlaps_runs_deadlocks_or_disagrees(
    plain: Served, sid: str
):
    answers: list[Answer] = []

    async def client(http: httpx.AsyncClient, commands: list[tuple[str, dict[str, Any]]]) -> None:
        for action, body in commands:
            response = await http.post(path(sid, action), json=body)
            answers.append(Answer(action=action, status=response.status_code, body=response.json()))

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=plain.base_url, timeout=30.0, limits=limits) as http:
        with trio.fail_after(STORM_DEADLINE):
            async with trio.open_nursery() as nursery:
                for commands in plan(seed=9):
                    nursery.start_soon(client, http, commands)
        status, chunks = await settle(http, sid)
    outcomes = check_storm(sid, answers, status, chunks)
    assert outcomes["runs"] >= 20, outcomes


class WsClient:
    """One WebSocket: a reader task sorts frames into answers (by id) and chunks."""

    def __init__(self, ws: WebSocketConnection, follows: bool) -> None:
        self.ws = ws
        self.follows = follows
        self.chunks: list[dict[str, Any]] = []
        self.answers: dict[int, dict[str, Any]] = {}
        self.changed = trio.Event()

    async def read(self) -> None:
        while True:
            frame = json.loads(await self.ws.get_message())
            if "seq" in frame:
                assert self.follows, f"a chunk reached a connection opened at fromSeq={NO_CHUNKS}: {frame}"
                self.chunks.append(frame)
            else:
                assert frame["type"] in ("ack", "error"), frame
                self.answers[frame["id"]] = frame
            self.changed.set()
            self.changed = trio.Event()

    async def wait_for(self, predicate: Any) -> None:
        while not predicate():
            await self.changed.wait()

    async def command(self, command_id: int, action: str, body: dict[str, Any]) -> Answer:
        await self.ws.send_message(json.dumps({"type": action, "id": command_id, **body}))
        await self.wait_for(lambda: command_id in self.answers)
        frame = self.answers.pop(command_id)
        assert frame.get("command") == action, frame
        if frame["type"] == "ack":
            return Answer(action=action, status=202, body=frame)
        return Answer(action=action, status=frame["httpStatus"], body=frame)


async def test_a_websocket_storm_on_one_session_never_overlaps_runs_deadlocks_or_disagrees(
    plain: Served, sid: str
):
    """The same storm as WebSocket commands; two of the 50 connections also stream the session from
    seq 1 and must end up with exactly ``/history``."""
    answers: list[Answer] = []
    followers: list[WsClient] = []
    all_sent = trio.Event()
    done_commands = 0
    base = f"{plain.ws_base}/sessions/{quote(sid, safe='')}/ws"

    async def client(index: int, commands: list[tuple[str, dict[str, Any]]], final: trio.Event) -> None:
        nonlocal done_commands
        follows = index < 2
        async with open_websocket_url(f"{base}?fromSeq={1 if follows else NO_CHUNKS}") as ws:
            conn = WsClient(ws, follows)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.read)
                for n, (action, body) in enumerate(commands):
                    answers.append(await conn.command(n, action, body))
                done_commands += 1
                if done_commands == CLIENTS:
                    all_sent.set()
                if follows:
                    followers.append(conn)
                await final.wait()  # stay connected until the followers have read everything
                nursery.cancel_scope.cancel()

    async with httpx.AsyncClient(base_url=plain.base_url, timeout=30.0) as http:
        final = trio.Event()
        with trio.fail_after(STORM_DEADLINE):
            async with trio.open_nursery() as nursery:
                for index, commands in enumerate(plan(seed=10)):
                    nursery.start_soon(client, index, commands, final)
                await all_sent.wait()
                status, chunks = await settle(http, sid)
                for follower in followers:
                    with trio.fail_after(SETTLE_TIMEOUT):
                        await follower.wait_for(lambda f=follower: len(f.chunks) >= len(chunks))
                final.set()
    outcomes = check_storm(sid, answers, status, chunks)
    assert outcomes["runs"] >= 20, outcomes
    assert len(followers) == 2
    for follower in followers:
        assert follower.chunks == chunks  # every chunk exactly once, in order, identical to history
