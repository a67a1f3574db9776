"""Messages a session actor handles in its mailbox, one at a time, in arrival order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .status import ResumeMode, RetryMode


@dataclass(frozen=True, kw_only=True)
class InputMessage:
    """A message supplied by a caller (``input.messages``, ``appendMessages``)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StartCommand:
    agent_type: str
    message: str | None = None
    state: dict[str, Any] | None = None
    messages: tuple[InputMessage, ...] = ()
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ResumeCommand:
    agent_type: str | None = None
    mode: ResumeMode = ResumeMode.CONTINUE
    checkpoint_id: str | None = None
    modify_state: dict[str, Any] | None = None
    append_messages: tuple[InputMessage, ...] = ()
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class RetryCommand:
    agent_type: str | None = None
    mode: RetryMode = RetryMode.FROM_CHECKPOINT
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class StopCommand:
    """Interrupt (soft, resumable) or abort (hard, not resumable) the running run."""

    kind: Literal["interrupt", "abort"]
    reason: str
