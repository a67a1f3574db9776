"""Hypothesis strategies for bad input, and raw-socket helpers for what httpx and trio-websocket refuse to
send (unnormalized or non-ASCII request targets, malformed WebSocket frames)."""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Any

import trio
from hypothesis import strategies as st

from .served import MAX_BODY

AGENTS = ["worker", "quick", "looper"]
RESUME_MODES = {"continue", "with_message", "from_checkpoint", "branch"}
ROLES = {"system", "user", "assistant", "tool"}
ACTIONS = ["start", "resume", "retry", "interrupt", "abort"]

# -- JSON values -----------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)
OBJECTS = st.dictionaries(st.text(max_size=12), JSON, max_size=6)
NOT_STR = (
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=5), SCALARS, max_size=3)
)
NOT_DICT = (
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.lists(SCALARS, max_size=3)
)
NOT_LIST = (
    st.booleans() | st.integers() | st.text(max_size=10) | st.dictionaries(st.text(max_size=5), SCALARS)
)
TOO_LONG_NAME = st.integers(min_value=257, max_value=5000).map(lambda n: "n" * n)
EXTRA = st.dictionaries(
    st.text(max_size=12).filter(
        lambda k: (
            k not in {"agentType", "agent_type", "input", "options", "reason", "tags", "userId", "user_id"}
            and k != "metadata"
        )
    ),
    JSON,
    max_size=3,
)


def _camel_to_snake(value: str) -> str:
    """As the server reads a mode: ``withMessage`` -> ``with_message``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", value).lower()


def _message(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"role": st.just("user"), "content": st.just("hi"), **fields})


# Start bodies that can never start a run: one field is of the wrong type, too long, or names no agent.
_BROKEN_START_PARTS: list[st.SearchStrategy[dict[str, Any]]] = [
    st.fixed_dictionaries({"agentType": NOT_STR | TOO_LONG_NAME | st.just("")}),
    st.fixed_dictionaries({"agentType": st.text(min_size=1, max_size=30).filter(lambda a: a not in AGENTS)}),
    st.fixed_dictionaries({"input": NOT_DICT}),
    st.fixed_dictionaries({"input": st.fixed_dictionaries({"message": NOT_STR})}),
    st.fixed_dictionaries({"input": st.fixed_dictionaries({"state": NOT_DICT})}),
    st.fixed_dictionaries({"input": st.fixed_dictionaries({"messages": NOT_LIST})}),
    st.fixed_dictionaries(
        {
            "input": st.fixed_dictionaries(
                {"messages": st.lists(_message(content=NOT_STR), min_size=1, max_size=2)}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "input": st.fixed_dictionaries(
                {
                    "messages": st.lists(
                        _message(role=st.text(max_size=10).filter(lambda r: r not in ROLES)), min_size=1
                    )
                }
            )
        }
    ),
    st.fixed_dictionaries({"tags": NOT_LIST | st.lists(NOT_STR | TOO_LONG_NAME, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"userId": NOT_STR | TOO_LONG_NAME}),
    st.fixed_dictionaries({"metadata": NOT_DICT}),
]
_BROKEN_RESUME_PARTS: list[st.SearchStrategy[dict[str, Any]]] = [
    st.fixed_dictionaries({"agentType": NOT_STR | TOO_LONG_NAME}),
    st.fixed_dictionaries({"options": NOT_DICT}),
    st.fixed_dictionaries(
        {
            "options": st.fixed_dictionaries(
                {
                    "mode": NOT_STR
                    | st.text(max_size=20).filter(lambda m: _camel_to_snake(m) not in RESUME_MODES)
                }
            )
        }
    ),
    st.fixed_dictionaries({"options": st.fixed_dictionaries({"checkpointId": NOT_STR | TOO_LONG_NAME})}),
    st.fixed_dictionaries({"options": st.fixed_dictionaries({"modifyState": NOT_DICT})}),
    st.fixed_dictionaries({"options": st.fixed_dictionaries({"appendMessages": NOT_LIST})}),
    st.fixed_dictionaries({"options": st.fixed_dictionaries({"message": NOT_STR})}),
    st.fixed_dictionaries(  # time travel to a checkpoint that does not exist: 404
        {
            "options": st.fixed_dictionaries(
                {
                    "mode": st.sampled_from(["from_checkpoint", "branch"]),
                    "checkpointId": st.text(min_size=1, max_size=40),
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {"options": st.fixed_dictionaries({"mode": st.sampled_from(["from_checkpoint", "branch"])})}
    ),
]


@st.composite
def broken_command(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A command body that cannot change a session whose latest run completed: start / resume bodies with
    one broken field (and maybe valid fields and unknown ones around it); any JSON object for retry (only
    a failed run can be retried), interrupt and abort (nothing runs)."""
    action = draw(st.sampled_from(ACTIONS))
    if action in ("retry", "interrupt", "abort"):
        return action, draw(OBJECTS)
    parts = _BROKEN_START_PARTS if action == "start" else _BROKEN_RESUME_PARTS
    broken = draw(st.sampled_from(parts).flatmap(lambda s: s))
    body = {**draw(EXTRA), **broken}
    if action == "start" and "agentType" not in body and draw(st.booleans()):
        body["agentType"] = "worker"
    return action, body


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


VALID_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(sorted(ROLES)), "content": st.text(max_size=50)},
    optional={"toolCallId": st.text(min_size=1, max_size=20)},
)
STATE = OBJECTS | st.fixed_dictionaries({"notes": JSON}) | st.integers(1, 60).map(nested)
LONG_TEXT = st.integers(1000, 30_000).map(lambda n: "y" * n)


@st.composite
def hostile_command(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A well-formed command with hostile content: odd states (the ``remember`` tool expects a list of
    notes), deep nesting near the limit, odd messages and roles, long texts, camelCase and snake_case."""
    action = draw(st.sampled_from(ACTIONS))
    if action == "start":
        body = draw(
            st.fixed_dictionaries(
                {"agentType": st.sampled_from(["worker", "quick"])},
                optional={
                    "input": st.fixed_dictionaries(
                        {},
                        optional={
                            "message": st.text(max_size=200) | LONG_TEXT,
                            "state": STATE,
                            "messages": st.lists(VALID_MESSAGE, max_size=5),
                        },
                    ),
                    "metadata": OBJECTS | st.integers(1, 60).map(nested),
                    "tags": st.lists(st.text(min_size=1, max_size=20), max_size=5),
                    "userId": st.text(min_size=1, max_size=30),
                },
            )
        )
    elif action == "resume":
        options = st.fixed_dictionaries(
            {},
            optional={
                "mode": st.sampled_from(["continue", "with_message", "withMessage"]),
                "message": st.text(max_size=100),
                "modifyState": STATE,
                "modify_state": STATE,
                "appendMessages": st.lists(VALID_MESSAGE, max_size=3),
            },
        )
        body = draw(st.fixed_dictionaries({}, optional={"options": options, "agentType": st.just("worker")}))
    elif action == "retry":
        modes = st.sampled_from(["from_checkpoint", "from_start", "fromStart"])
        options = st.fixed_dictionaries({}, optional={"mode": modes, "message": st.text(max_size=100)})
        body = draw(st.fixed_dictionaries({}, optional={"options": options}))
    else:
        body = draw(st.fixed_dictionaries({}, optional={"reason": st.text(min_size=1, max_size=1000)}))
    return action, body


# -- raw bodies --------------------------------------------------------------------------------------

INVALID_UTF8 = st.sampled_from(
    [
        b"\xff",
        b"\xfe\xff",
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"\xf8\x88\x80\x80\x80",
        b"\x80",
        b"\xe2\x82(",
    ]
)


def _valid_command() -> bytes:
    return json.dumps({"agentType": "worker", "input": {"message": "hello", "state": {"a": [1, 2]}}}).encode()


@st.composite
def raw_attack(draw: st.DrawFn) -> tuple[str, bytes]:
    """``(kind, body)``: bytes that are not a strict JSON object within the body limit. Every one must be
    refused (400 ``invalid_request``, or 413 ``payload_too_large``) on every command route."""
    kind = draw(
        st.sampled_from(
            [
                "constant",
                "overflow",
                "digits",
                "utf8",
                "surrogate",
                "nesting",
                "truncated",
                "bom",
                "not-object",
                "binary",
                "oversized",
            ]
        )
    )
    if kind == "constant":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"-NaN", b"nan", b"inf"]))
        return kind, b'{"agentType": "worker", "input": {"message": "x", "state": {"n": ' + literal + b"}}}"
    if kind == "overflow":
        number = draw(st.sampled_from([b"1e999", b"-1e999", b"1.5E+400", b"-0.1e99999"]))
        return kind, b'{"agentType": "worker", "n": ' + number + b"}"
    if kind == "digits":  # Python refuses ints of more than 4,300 digits
        return kind, b'{"agentType": "worker", "n": ' + b"7" * draw(st.integers(4301, 20_000)) + b"}"
    if kind == "utf8":
        bad = draw(INVALID_UTF8) + draw(st.text(max_size=8).map(str.encode))
        return kind, b'{"agentType": "worker", "input": {"message": "' + bad + b'"}}'
    if kind == "surrogate":
        code = draw(st.integers(0xD800, 0xDFFF))
        return kind, b'{"agentType": "worker", "input": {"message": "a\\u%04x"}}' % code
    if kind == "nesting":
        depth = draw(st.integers(65, 5000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return kind, b'{"agentType": "worker", "metadata": ' + opener * depth + b"1" + closer * depth + b"}"
    if kind == "truncated":
        valid = _valid_command()
        return kind, valid[: draw(st.integers(1, len(valid) - 1))]
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + _valid_command()
    if kind == "not-object":
        return kind, json.dumps(draw(SCALARS | st.lists(JSON, max_size=3))).encode()
    if kind == "binary":
        data = draw(
            st.binary(min_size=1, max_size=200).filter(lambda b: b.strip() != b"" and not _is_object(b))
        )
        return kind, data
    size = draw(st.integers(MAX_BODY + 1, MAX_BODY + 4096))
    return kind, b'{"agentType": "worker", "input": {"message": "' + b"x" * size + b'"}}'


def _is_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def is_json(data: bytes) -> bool:
    """Whether even a lenient parser (Python's ``json``) takes ``data`` as a JSON value."""
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


# -- raw HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(port: int, target: bytes, method: bytes = b"GET", body: bytes = b"") -> RawAnswer:
    """One request with the target sent exactly as given (no normalization, no encoding). The answer is
    read by its ``Content-Length``: Hypercorn under quart-trio keeps a connection open after a response
    even when the request said ``Connection: close`` (pgjones/hypercorn#330)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        head = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, target)
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        await stream.send_all(head + body)
        data = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                assert chunk, f"the server closed the connection without an answer: {data!r}"
                data += chunk
            header_block, _, payload = data.partition(b"\r\n\r\n")
            lines = header_block.split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
            length = int(headers.get("content-length", "0"))
            while len(payload) < length:
                chunk = await stream.receive_some(65536)
                assert chunk, "the server closed the connection in the middle of an answer"
                payload += chunk
    return RawAnswer(status=int(lines[0].split()[1]), headers=headers, body=payload)


# -- raw WebSocket frames ----------------------------------------------------------------------------


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    """One WebSocket frame as a client sends it (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload)
    mask_bit = 0x80 if mask else 0
    if size < 126:
        header = bytes([first, mask_bit | size])
    elif size < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@dataclass(frozen=True, kw_only=True)
class RawWsOutcome:
    frames: list[tuple[int, bytes]]  # (opcode, payload) the server sent
    closed_by_server: bool  # the server ended the TCP connection

    @property
    def close_code(self) -> int | None:
        for opcode, payload in self.frames:
            if opcode == 0x8 and len(payload) >= 2:
                code: int = struct.unpack("!H", payload[:2])[0]
                return code
        return None

    def texts(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for opcode, payload in self.frames if opcode == 0x1]


async def raw_websocket(port: int, target: str, frames: list[bytes], *, wait: float = 5.0) -> RawWsOutcome:
    """Open a WebSocket by hand, send ``frames`` as given, and collect what the server sends until it
    closes the connection or ``wait`` seconds pass."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = (
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await stream.send_all(request.encode())
        data = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        closed = False
        try:
            for frame in frames:
                await stream.send_all(frame)
            with trio.move_on_after(wait):
                while chunk := await stream.receive_some(65536):
                    data += chunk
                closed = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            closed = True
    return RawWsOutcome(frames=_parse_server_frames(data), closed_by_server=closed)


def _parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    at = 0
    while at + 2 <= len(data):
        opcode, size, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if size == 126:
            size, at = struct.unpack("!H", data[at : at + 2])[0], at + 2
        elif size == 127:
            size, at = struct.unpack("!Q", data[at : at + 8])[0], at + 8
        frames.append((opcode, data[at : at + size]))
        at += size
    return frames
