"""Run statuses and the records the engine answers with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"


class ResumeMode(StrEnum):
    CONTINUE = "continue"
    WITH_MESSAGE = "with_message"
    FROM_CHECKPOINT = "from_checkpoint"
    BRANCH = "branch"


class RetryMode(StrEnum):
    FROM_CHECKPOINT = "from_checkpoint"
    FROM_START = "from_start"


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """What start, resume, retry, interrupt and abort answer: the run they created or stopped."""

    session_id: str
    run_id: str
    status: str
    stream_id: str | None = None
    first_seq: int | None = None  # the seq of the run's first chunk; where a handle's stream starts

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"sessionId": self.session_id, "runId": self.run_id}
        if self.stream_id is not None:
            body["streamId"] = self.stream_id
        body["status"] = self.status
        return body


@dataclass(frozen=True, kw_only=True)
class SessionStatus:
    """A session's status: its latest run (if any) and whether it can be resumed."""

    session_id: str
    status: str
    step_count: int = 0
    is_executing: bool = False
    can_resume: bool = False
    run_id: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    resume_blocked_reason: str | None = None
    agent_type: str | None = None

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"sessionId": self.session_id}
        if self.run_id is not None:
            body["runId"] = self.run_id
        body["status"] = self.status
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        body["stepCount"] = self.step_count
        if self.checkpoint_id is not None:
            body["checkpointId"] = self.checkpoint_id
        body["isExecuting"] = self.is_executing
        body["canResume"] = self.can_resume
        if self.resume_blocked_reason is not None:
            body["resumeBlockedReason"] = self.resume_blocked_reason
        return body
