"""Chunk types (DESIGN §7) and how the engine drafts them.

A chunk on the wire is ``{"seq", "runId", "type", "ts", ...payload}``; the store assigns ``seq`` and keeps the
exact JSON text, so WebSocket, SSE and ``/history`` send identical bytes. ``ts`` is the emit time in Unix
epoch milliseconds.
"""

from __future__ import annotations

import time
from typing import Any, Final

from stores import ChunkDraft

RUN_STARTED: Final = "run_started"
RUN_RESUMED: Final = "run_resumed"
STEP_STARTED: Final = "step_started"
TEXT_DELTA: Final = "text_delta"
REASONING_DELTA: Final = "reasoning_delta"
TOOL_CALL_START: Final = "tool_call_start"
TOOL_CALL_DELTA: Final = "tool_call_delta"
TOOL_CALL_END: Final = "tool_call_end"
TOOL_RESULT: Final = "tool_result"
STATE_PATCH: Final = "state_patch"
CUSTOM: Final = "custom"
STEP_FINISHED: Final = "step_finished"
CHECKPOINT: Final = "checkpoint"
RUN_INTERRUPTED: Final = "run_interrupted"
RUN_COMPLETED: Final = "run_completed"
RUN_FAILED: Final = "run_failed"

TERMINAL_TYPES: Final = frozenset({RUN_COMPLETED, RUN_FAILED, RUN_INTERRUPTED})


def now_ms() -> int:
    """The current time in Unix epoch milliseconds."""
    return int(time.time() * 1000)


def draft(run_id: str, chunk_type: str, **payload: Any) -> ChunkDraft:
    """A chunk of ``run_id`` stamped with the current time; the store numbers it on append."""
    return ChunkDraft(run_id=run_id, type=chunk_type, ts=now_ms(), payload=payload)
