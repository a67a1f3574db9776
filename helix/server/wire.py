"""The JSON shapes of the read endpoints (DESIGN §6): camelCase dicts built from the engine's records.

Times (``createdAt``) are Unix epoch milliseconds, like a chunk's ``ts``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from stores import Checkpoint, StoredChunk, UsageEntry, UsageRollup, UsageTotals

from ..llm import Message
from ..runtime import HistoryPage, Snapshot


def dumps(value: Any) -> str:
    """Compact JSON; refuses NaN and Infinity rather than sending something that is not JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def epoch_ms(seconds: float) -> int:
    return round(seconds * 1000)


def message(m: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"id": m.id, "role": m.role, "content": m.content}
    if m.tool_calls:
        body["toolCalls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    if m.tool_call_id is not None:
        body["toolCallId"] = m.tool_call_id
    return body


def messages(items: Sequence[Message]) -> dict[str, Any]:
    return {"messages": [message(m) for m in items]}


def checkpoint(c: Checkpoint) -> dict[str, Any]:
    return {
        "id": c.id,
        "runId": c.run_id,
        "step": c.step,
        "parentId": c.parent_id,
        "createdAt": epoch_ms(c.created_at),
        "status": c.status,
    }


def checkpoints(items: Sequence[Checkpoint]) -> dict[str, Any]:
    return {"checkpoints": [checkpoint(c) for c in items]}


def usage_entry(e: UsageEntry) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "model": e.model or None,
        "name": e.name,
        "runId": e.run_id,
        "inputTokens": e.input_tokens,
        "outputTokens": e.output_tokens,
        "cachedTokens": e.cached_tokens,
        "reasoningTokens": e.reasoning_tokens,
        "durationMs": e.duration_ms,
        "createdAt": epoch_ms(e.created_at),
    }


def usage_totals(t: UsageTotals) -> dict[str, Any]:
    return {
        "calls": t.calls,
        "inputTokens": t.input_tokens,
        "outputTokens": t.output_tokens,
        "cachedTokens": t.cached_tokens,
        "reasoningTokens": t.reasoning_tokens,
        "durationMs": t.duration_ms,
    }


def usage(entries: Sequence[UsageEntry], rollup: UsageRollup | None) -> dict[str, Any]:
    """``{entries, rollup: {total, byKind, byModel}}``; the rollup lists only kinds and models that have
    entries (entries without a model, such as tool calls, count in no model)."""
    if rollup is None:
        rollup = UsageRollup(total=UsageTotals(), by_kind={}, by_model={})
    return {
        "entries": [usage_entry(e) for e in entries],
        "rollup": {
            "total": usage_totals(rollup.total),
            "byKind": {kind: usage_totals(t) for kind, t in rollup.by_kind.items()},
            "byModel": {model: usage_totals(t) for model, t in rollup.by_model.items()},
        },
    }


def snapshot(s: Snapshot) -> dict[str, Any]:
    return {
        "status": s.status.status,
        "messages": [message(m) for m in s.messages],
        "state": s.state,
        "lastSeq": s.last_seq,
        "pendingToolCalls": s.pending_tool_calls,
    }


def history(page: HistoryPage) -> dict[str, Any]:
    return {"chunks": [c.as_dict() for c in page.chunks], "nextSeq": page.next_seq, "hasMore": page.has_more}


def history_text(page: HistoryPage) -> str:
    """The history answer with each chunk's stored JSON text spliced in as is: byte for byte the frame the
    WebSocket and SSE send for that chunk."""
    chunks = ",".join(c.json for c in page.chunks)
    return (
        f'{{"chunks":[{chunks}],"nextSeq":{page.next_seq},"hasMore":{"true" if page.has_more else "false"}}}'
    )


def sse_event(stored: StoredChunk) -> bytes:
    return f"id: {stored.seq}\ndata: {stored.json}\n\n".encode()
