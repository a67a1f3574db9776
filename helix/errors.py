"""The helix error tree.

    HelixError                      code "internal_error", 500
    ├── InvalidRequestError         "invalid_request", 400 (bad input; ``details`` carries pydantic errors)
    ├── AgentNotFoundError          "agent_not_found", 404 (``agent_type``, ``available_types``)
    ├── CheckpointNotFoundError     "checkpoint_not_found", 404 (``checkpoint_id``)
    ├── InvalidRunStateError        "invalid_run_state", 409 (``status``: what the session is doing)
    ├── HookFailedError             "hook_failed", 500 (a user hook raised)
    └── LLMProviderError            "llm_error", 502 (``provider``, ``status``, ``retryable``)

Only the server knows HTTP, but each class carries its code and status so that one table maps them.
Exceptions a tool raises to talk to the model are not runtime errors: they become ``tool_result`` chunks
with ``isError`` and never reach this tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class HelixError(Exception):
    """Root of every error the helix runtime raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"code", "message", "details"?}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidRequestError(HelixError):
    code, status = "invalid_request", 400


class AgentNotFoundError(HelixError):
    code, status = "agent_not_found", 404

    def __init__(self, agent_type: str, available_types: Sequence[str]) -> None:
        listed = ", ".join(available_types) or "none"
        super().__init__(f"no agent {agent_type!r} is registered; registered agents: {listed}")
        self.agent_type = agent_type
        self.available_types = list(available_types)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["availableTypes"] = self.available_types
        return body


class CheckpointNotFoundError(HelixError):
    code, status = "checkpoint_not_found", 404

    def __init__(self, checkpoint_id: str) -> None:
        super().__init__(f"no checkpoint {checkpoint_id!r} in this session; list them at /checkpoints")
        self.checkpoint_id = checkpoint_id


class InvalidRunStateError(HelixError):
    code, status = "invalid_run_state", 409

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.run_status = status


class HookFailedError(HelixError):
    code, status = "hook_failed", 500

    def __init__(self, hook: str) -> None:
        super().__init__(f"the {hook} hook raised; the session was left untouched")
        self.hook = hook


class LLMProviderError(HelixError):
    """A model provider refused or broke a request.

    ``retryable`` is true for rate limits, overload and 5xx answers, which adapters retry themselves with
    backoff before raising; a raised error fails the step and the run (it can be retried from its last
    checkpoint).
    """

    code, status = "llm_error", 502

    def __init__(
        self, message: str, *, provider: str, status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.provider_status = status
        self.retryable = retryable
