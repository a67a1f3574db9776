"""The real OpenAI and Anthropic adapters driving whole agent runs through ``create_agent_server``.

Each test starts the fake provider (``fake_providers.py``) in its own trio loop on 127.0.0.1, then a real
Hypercorn process serving ``tests/adapters/provider_app.py`` whose adapter points at that provider (its
``base_url`` goes to the process in ``HELIX_E2E_BASE_URL``). The run is driven and read over HTTP only:
``POST /start`` and ``/retry``; ``/status`` (polled with a deadline), ``/history``, ``/messages``,
``/usage``. What the provider received (``provider.requests``) shows each step's request in the
provider's own wire format.

The scenario: the user asks to reserve two apples; step 1 says a few words and calls ``lookup_stock``,
step 2 calls ``reserve``, step 3 answers. Each tool call's arguments arrive split across deltas.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.adapters.fake_providers import (
    FakeProvider,
    Reply,
    ToolUse,
    anthropic_error,
    anthropic_reply,
    openai_error,
    openai_reply,
    openai_usage,
    serve_fake_provider,
)
from tests.adapters.provider_app import API_KEY, MODELS, lookup_stock, reserve
from tests.server.support import history, path, wait_status

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
APP = "tests.adapters.provider_app:server"
STARTUP_TIMEOUT = 30.0
RUN_TIMEOUT = 20.0

AGENT = "shopkeeper"
SYSTEM_PROMPT = "You run a fruit shop."
QUESTION = "Reserve two apples, please."
STEP1_TEXT = ("Let me ", "check the stock.")
STEP3_TEXT = ("Reserved 2 apples ", "for you.")
ANSWER = "".join(STEP3_TEXT)
LOOKUP_ARGUMENTS = {"item": "apples"}
RESERVE_ARGUMENTS = {"item": "apples", "quantity": 2}
LOOKUP_RESULT = "apples: 12 in stock"
RESERVE_RESULT = "reserved 2 x apples"

# What the fake provider's streams report as the serving model (the adapters ask for MODELS[...]).
SERVED_MODELS = {"openai": "gpt-4o-mini-2024-07-18", "anthropic": "claude-fake-1-20250101"}

# The chunk types of the whole run, in order: provider-independent, as both adapters map to one vocabulary.
FULL_RUN_TYPES = [
    "run_started",
    *["step_started", "text_delta", "text_delta"],
    *["tool_call_start", "tool_call_delta", "tool_call_delta", "tool_call_end", "tool_result"],
    *["step_finished", "checkpoint"],
    *["step_started", "tool_call_start", "tool_call_delta", "tool_call_delta", "tool_call_delta"],
    *["tool_call_end", "tool_result", "step_finished", "checkpoint"],
    *["step_started", "text_delta", "text_delta", "step_finished", "checkpoint"],
    "run_completed",
]


# -- the scripts, in each provider's wire format ---------------------------------------------------


@dataclass(frozen=True)
class Script:
    """One provider's run: its replies and tool call ids, and the usage we expect for each step (as
    ``step_finished`` and ``/usage`` report it)."""

    lookup_id: str
    reserve_id: str
    tool_step_1: Reply
    tool_step_2: Reply
    answer: Reply
    usage: tuple[dict[str, int], dict[str, int], dict[str, int]]
    unauthorized: Reply


def wire_usage(inp: int, out: int, cached: int, reasoning: int = 0) -> dict[str, int]:
    return {"inputTokens": inp, "outputTokens": out, "cachedTokens": cached, "reasoningTokens": reasoning}


def openai_script() -> Script:
    lookup = ToolUse(id="call_lookup_1", name="lookup_stock", argument_pieces=['{"item": ', '"apples"}'])
    reserve_call = ToolUse(
        id="call_reserve_2", name="reserve", argument_pieces=['{"item": "app', 'les", "quan', 'tity": 2}']
    )
    return Script(
        lookup_id=lookup.id,
        reserve_id=reserve_call.id,
        tool_step_1=openai_reply(
            text=STEP1_TEXT, tool_calls=[lookup], usage=openai_usage(120, 18, cached_tokens=64)
        ),
        tool_step_2=openai_reply(
            tool_calls=[reserve_call], usage=openai_usage(160, 22, cached_tokens=128, reasoning_tokens=7)
        ),
        answer=openai_reply(text=STEP3_TEXT, usage=openai_usage(200, 9, cached_tokens=160)),
        usage=(wire_usage(120, 18, 64), wire_usage(160, 22, 128, 7), wire_usage(200, 9, 160)),
        unauthorized=openai_error(
            401, "Incorrect API key provided: test-key.", type="invalid_request_error", code="invalid_api_key"
        ),
    )


def anthropic_script() -> Script:
    lookup = ToolUse(id="toolu_01Lookup", name="lookup_stock", argument_pieces=['{"item": ', '"apples"}'])
    reserve_call = ToolUse(
        id="toolu_02Reserve", name="reserve", argument_pieces=['{"item": "app', 'les", "quan', 'tity": 2}']
    )
    # Anthropic's input_tokens leave out the cache; ours is the whole prompt (uncached + read + written).
    # message_delta output counts are cumulative: the last one is the step's count.
    return Script(
        lookup_id=lookup.id,
        reserve_id=reserve_call.id,
        tool_step_1=anthropic_reply(
            text=STEP1_TEXT,
            tool_uses=[lookup],
            input_tokens=40,
            cache_read_input_tokens=64,
            cache_creation_input_tokens=16,
            output_tokens=(5, 18),
        ),
        tool_step_2=anthropic_reply(
            tool_uses=[reserve_call], input_tokens=32, cache_read_input_tokens=128, output_tokens=(22,)
        ),
        answer=anthropic_reply(
            text=STEP3_TEXT, input_tokens=40, cache_read_input_tokens=160, output_tokens=(2, 6, 9)
        ),
        usage=(wire_usage(120, 18, 64), wire_usage(160, 22, 128), wire_usage(200, 9, 160)),
        unauthorized=anthropic_error(401, "invalid x-api-key", type="authentication_error"),
    )


SCRIPTS = {"openai": openai_script, "anthropic": anthropic_script}


# -- the served app in a real Hypercorn process -----------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServedApp:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Kill Hypercorn and its worker (its own process group) and reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def launch(provider_name: str, provider: FakeProvider, tmp_path: Path) -> ServedApp:
    base_url = provider.openai_base_url if provider_name == "openai" else provider.anthropic_base_url
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HELIX_TEST_DATA_DIR": str(tmp_path / "data"),
        "HELIX_E2E_PROVIDER": provider_name,
        "HELIX_E2E_BASE_URL": base_url,
    }
    log_path = tmp_path / "hypercorn.log"
    command = [sys.executable, "-m", "hypercorn", "-k", "trio", "--bind", f"127.0.0.1:{port}", APP]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return ServedApp(process=process, base_url=f"http://127.0.0.1:{port}", log_path=log_path)


async def wait_healthy(app: ServedApp, http: httpx.AsyncClient) -> None:
    """Poll ``/healthz`` of a process that is starting (the trio loop, and so the fake provider, keeps
    running meanwhile), bounded by STARTUP_TIMEOUT."""
    with trio.move_on_after(STARTUP_TIMEOUT):
        while True:
            if app.process.poll() is not None:
                raise RuntimeError(f"hypercorn exited with {app.process.returncode}:\n{app.log()}")
            try:
                if (await http.get("/healthz", timeout=1.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await trio.sleep(0.05)
    raise RuntimeError(f"hypercorn did not become healthy in {STARTUP_TIMEOUT} s:\n{app.log()}")


@pytest.fixture(params=["openai", "anthropic"])
def provider_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def provider(nursery: trio.Nursery) -> FakeProvider:
    started: FakeProvider = await nursery.start(serve_fake_provider)
    return started


@pytest.fixture
async def served(provider_name: str, provider: FakeProvider, tmp_path: Path) -> AsyncIterator[ServedApp]:
    app = launch(provider_name, provider, tmp_path)
    try:
        yield app
    finally:
        app.kill()
        print(f"--- hypercorn log ---\n{app.log()}")  # shown by pytest when the test fails


@pytest.fixture
async def http(served: ServedApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=RUN_TIMEOUT) as client:
        await wait_healthy(served, client)
        yield client


@pytest.fixture
def sid() -> str:
    return "shop-1"


# -- driving a run -------------------------------------------------------------------------------------


async def start_run(http: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    response = await http.post(path(sid, "start"), json={"agentType": AGENT, "input": {"message": QUESTION}})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_run_done(http: httpx.AsyncClient, sid: str, run_id: str) -> dict[str, Any]:
    """Poll ``/status`` until run ``run_id`` has ended (bounded by RUN_TIMEOUT)."""
    return await wait_status(
        http, sid, lambda s: s.get("runId") == run_id and not s["isExecuting"], timeout=RUN_TIMEOUT
    )


async def read(http: httpx.AsyncClient, sid: str, route: str) -> Any:
    response = await http.get(path(sid, route))
    assert response.status_code == 200, response.text
    return response.json()


def of_type(chunks: list[dict[str, Any]], chunk_type: str) -> list[dict[str, Any]]:
    return [c for c in chunks if c["type"] == chunk_type]


def with_parsed_arguments(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages with each tool call's ``function.arguments`` JSON string decoded, to compare values
    rather than one particular JSON spelling."""
    out = []
    for message in messages:
        if message.get("tool_calls"):
            calls = [
                {
                    **call,
                    "function": {**call["function"], "arguments": json.loads(call["function"]["arguments"])},
                }
                for call in message["tool_calls"]
            ]
            message = {**message, "tool_calls": calls}
        out.append(message)
    return out


def openai_tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def expected_tools(provider_name: str) -> list[dict[str, Any]]:
    specs = [lookup_stock.spec, reserve.spec]
    if provider_name == "openai":
        return [
            {
                "type": "function",
                "function": {"name": s.name, "description": s.description, "parameters": s.parameters},
            }
            for s in specs
        ]
    return [{"name": s.name, "description": s.description, "input_schema": s.parameters} for s in specs]


def conversations(provider_name: str, script: Script) -> list[list[dict[str, Any]]]:
    """What the provider must receive as the conversation of steps 1, 2 and 3, in its wire format
    (OpenAI: with tool call arguments decoded, see :func:`with_parsed_arguments`)."""
    step1_text = "".join(STEP1_TEXT)
    first: list[dict[str, Any]]
    step1: list[dict[str, Any]]  # what step 1 adds: the assistant's tool call and its result
    step2: list[dict[str, Any]]
    if provider_name == "openai":
        first = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}]
        step1 = [
            {
                "role": "assistant",
                "content": step1_text,
                "tool_calls": [openai_tool_call(script.lookup_id, "lookup_stock", LOOKUP_ARGUMENTS)],
            },
            {"role": "tool", "tool_call_id": script.lookup_id, "content": LOOKUP_RESULT},
        ]
        step2 = [
            {
                "role": "assistant",
                "content": None,  # null, not "", next to tool calls
                "tool_calls": [openai_tool_call(script.reserve_id, "reserve", RESERVE_ARGUMENTS)],
            },
            {"role": "tool", "tool_call_id": script.reserve_id, "content": RESERVE_RESULT},
        ]
    else:
        # The system prompt travels in `system`; tool results are user turns of tool_result blocks.
        first = [{"role": "user", "content": QUESTION}]
        lookup_use = {
            "type": "tool_use",
            "id": script.lookup_id,
            "name": "lookup_stock",
            "input": LOOKUP_ARGUMENTS,
        }
        reserve_use = {
            "type": "tool_use",
            "id": script.reserve_id,
            "name": "reserve",
            "input": RESERVE_ARGUMENTS,
        }
        step1 = [
            {"role": "assistant", "content": [{"type": "text", "text": step1_text}, lookup_use]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": script.lookup_id, "content": LOOKUP_RESULT}
                ],
            },
        ]
        step2 = [
            {"role": "assistant", "content": [reserve_use]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": script.reserve_id, "content": RESERVE_RESULT}
                ],
            },
        ]
    return [first, first + step1, first + step1 + step2]


def sent_conversation(provider_name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = body["messages"]
    return with_parsed_arguments(messages) if provider_name == "openai" else messages


def assert_request_shape(provider_name: str, provider: FakeProvider) -> None:
    """Every request went to the provider's streaming endpoint with the dummy key, the configured model,
    our system prompt and both tools in the provider's tool format."""
    for request in provider.requests:
        assert request.method == "POST"
        body = request.body
        assert body["model"] == MODELS[provider_name] and body["stream"] is True
        assert body["tools"] == expected_tools(provider_name)
        if provider_name == "openai":
            assert request.path == "/v1/chat/completions"
            assert request.headers["authorization"] == f"Bearer {API_KEY}"
            assert body["stream_options"] == {"include_usage": True}
        else:
            assert request.path == "/v1/messages"
            # `x-api-key` is the published header; recent SDKs send the key as a bearer token instead.
            keys = {request.headers.get("x-api-key"), request.headers.get("authorization")}
            assert keys & {API_KEY, f"Bearer {API_KEY}"}, request.headers
            assert "anthropic-version" in request.headers
            assert body["system"] == SYSTEM_PROMPT and body["max_tokens"] == 1024


# -- the tests ---------------------------------------------------------------------------------------


async def test_a_full_agent_loop_runs_through_the_server_on_the_real_adapter(
    provider_name: str, provider: FakeProvider, http: httpx.AsyncClient, sid: str
) -> None:
    script = SCRIPTS[provider_name]()
    provider.script(script.tool_step_1, script.tool_step_2, script.answer)

    run_id = (await start_run(http, sid))["runId"]
    status = await wait_run_done(http, sid, run_id)

    assert status["status"] == "completed", status
    assert status["output"] == ANSWER and status["stepCount"] == 3

    # The chunk history: both tool steps streamed (arguments in pieces), run, answered; then the answer.
    chunks = await history(http, sid)
    assert [c["type"] for c in chunks] == FULL_RUN_TYPES
    assert {c["runId"] for c in chunks} == {run_id}
    assert [c["delta"] for c in of_type(chunks, "text_delta")] == [*STEP1_TEXT, *STEP3_TEXT]
    assert [(c["toolCallId"], c["toolName"]) for c in of_type(chunks, "tool_call_start")] == [
        (script.lookup_id, "lookup_stock"),
        (script.reserve_id, "reserve"),
    ]
    deltas = of_type(chunks, "tool_call_delta")
    assert "".join(c["argumentsDelta"] for c in deltas if c["toolCallId"] == script.lookup_id) == (
        '{"item": "apples"}'
    )
    assert "".join(c["argumentsDelta"] for c in deltas if c["toolCallId"] == script.reserve_id) == (
        '{"item": "apples", "quantity": 2}'
    )
    assert [(c["toolCallId"], c["toolName"], c["arguments"]) for c in of_type(chunks, "tool_call_end")] == [
        (script.lookup_id, "lookup_stock", LOOKUP_ARGUMENTS),
        (script.reserve_id, "reserve", RESERVE_ARGUMENTS),
    ]
    assert [
        (c["toolCallId"], c["toolName"], c["result"], c["isError"]) for c in of_type(chunks, "tool_result")
    ] == [
        (script.lookup_id, "lookup_stock", LOOKUP_RESULT, False),
        (script.reserve_id, "reserve", RESERVE_RESULT, False),
    ]
    assert [c["usage"] for c in of_type(chunks, "step_finished")] == list(script.usage)
    assert of_type(chunks, "run_completed")[0]["output"] == ANSWER

    # The stored conversation.
    messages = (await read(http, sid, "messages"))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[0]["content"] == QUESTION
    assert messages[1]["content"] == "".join(STEP1_TEXT)
    assert messages[1]["toolCalls"] == [
        {"id": script.lookup_id, "name": "lookup_stock", "arguments": LOOKUP_ARGUMENTS}
    ]
    assert (messages[2]["toolCallId"], messages[2]["content"]) == (script.lookup_id, LOOKUP_RESULT)
    assert messages[3]["content"] == ""
    assert messages[3]["toolCalls"] == [
        {"id": script.reserve_id, "name": "reserve", "arguments": RESERVE_ARGUMENTS}
    ]
    assert (messages[4]["toolCallId"], messages[4]["content"]) == (script.reserve_id, RESERVE_RESULT)
    assert messages[5]["content"] == ANSWER and "toolCalls" not in messages[5]

    # Usage: one llm entry per step with the provider's counts and the model it reported; one per tool.
    usage = await read(http, sid, "usage")
    served_model = SERVED_MODELS[provider_name]
    llm = [e for e in usage["entries"] if e["kind"] == "llm"]
    assert [
        {k: e[k] for k in ("inputTokens", "outputTokens", "cachedTokens", "reasoningTokens")} for e in llm
    ] == list(script.usage)
    assert {(e["model"], e["runId"]) for e in llm} == {(served_model, run_id)}
    assert [e["name"] for e in usage["entries"] if e["kind"] == "tool"] == ["lookup_stock", "reserve"]
    by_model = usage["rollup"]["byModel"]
    assert list(by_model) == [served_model]
    assert by_model[served_model]["calls"] == 3
    for field in ("inputTokens", "outputTokens", "cachedTokens", "reasoningTokens"):
        assert by_model[served_model][field] == sum(step[field] for step in script.usage)

    # The provider's side: three requests, each carrying the conversation so far in its own format.
    assert len(provider.requests) == 3
    assert_request_shape(provider_name, provider)
    expected = conversations(provider_name, script)
    assert [sent_conversation(provider_name, r.body) for r in provider.requests] == expected


async def test_a_401_fails_the_run_naming_the_provider_and_retry_completes_it(
    provider_name: str, provider: FakeProvider, http: httpx.AsyncClient, sid: str
) -> None:
    script = SCRIPTS[provider_name]()
    provider.script(script.tool_step_1, script.unauthorized)

    failed_run = (await start_run(http, sid))["runId"]
    status = await wait_run_done(http, sid, failed_run)

    assert status["status"] == "failed", status
    error = status["error"]
    assert error["code"] == "llm_error"
    assert provider_name in error["message"] and "401" in error["message"], error
    assert "check the API key" in error["message"]
    chunks = await history(http, sid)
    failed = of_type(chunks, "run_failed")
    assert len(failed) == 1 and failed[0]["runId"] == failed_run and failed[0]["error"] == error
    assert of_type(chunks, "run_completed") == []
    assert len(provider.requests) == 2  # step 1, then step 2's 401: an auth error is not retried
    assert status["stepCount"] == 1  # step 1 was committed (and checkpointed) before step 2 failed

    # The provider recovers; the retry goes on from step 1's checkpoint and asks step 2 again.
    provider.script(script.answer)
    response = await http.post(path(sid, "retry"), json={})
    assert response.status_code == 202, response.text
    retried_run = response.json()["runId"]
    assert retried_run != failed_run and response.json()["status"] == "resumed"
    first_seq = int(response.headers["Helix-First-Seq"])
    status = await wait_run_done(http, sid, retried_run)

    assert status["status"] == "completed", status
    assert status["output"] == ANSWER
    retry_chunks = await history(http, sid, from_seq=first_seq)
    assert retry_chunks[0]["type"] == "run_resumed"
    assert retry_chunks[0]["retry"] is True and retry_chunks[0]["retriedRunId"] == failed_run
    assert retry_chunks[0]["mode"] == "from_checkpoint"
    assert [c["type"] for c in retry_chunks][-1] == "run_completed"
    assert retry_chunks[-1]["output"] == ANSWER
    assert [c["delta"] for c in of_type(retry_chunks, "text_delta")] == list(STEP3_TEXT)
    assert of_type(retry_chunks, "tool_call_start") == []

    messages = (await read(http, sid, "messages"))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[-1]["content"] == ANSWER

    # The retried request is the failed one again: the conversation up to step 1's tool result.
    assert len(provider.requests) == 3
    assert_request_shape(provider_name, provider)
    assert provider.requests[2].body == provider.requests[1].body
    assert (
        sent_conversation(provider_name, provider.requests[2].body) == conversations(provider_name, script)[1]
    )

    # Usage: the committed steps only (step 1 of the failed run, the answer of the retry).
    usage = await read(http, sid, "usage")
    llm = [e for e in usage["entries"] if e["kind"] == "llm"]
    assert [(e["runId"], e["inputTokens"], e["cachedTokens"]) for e in llm] == [
        (failed_run, script.usage[0]["inputTokens"], script.usage[0]["cachedTokens"]),
        (retried_run, script.usage[2]["inputTokens"], script.usage[2]["cachedTokens"]),
    ]
