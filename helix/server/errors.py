"""How errors reach HTTP and WebSocket clients: one table from exception class to ``(code, status)``.

Every error answer is ``{"error": {"code", "message", "details"?}}`` (plus ``availableTypes`` for
``agent_not_found``). An exception that is not in the table is a bug: it is logged with its traceback and
answered with a bare 500 ``internal_error`` whose message names no internals, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from actors import ActorStoppedError, DirectoryClosedError
from stores import SchemaTooNewError, SessionLockedError, StoreFileError

from ..errors import (
    AgentNotFoundError,
    CheckpointNotFoundError,
    HelixError,
    HookFailedError,
    InvalidRequestError,
    InvalidRunStateError,
    LLMProviderError,
)


class RouteNotFoundError(HelixError):
    """No route answers this path (any method)."""

    code, status = "not_found", 404

    def __init__(self, path: str) -> None:
        shown = path if len(path) <= 200 else f"{path[:200]}..."
        super().__init__(f"no endpoint at {shown!r}; session endpoints live under /sessions/{{sessionId}}/")


class MethodNotAllowedError(HelixError):
    """The path exists, but not for this method; ``allowed`` becomes the ``Allow`` header."""

    code, status = "method_not_allowed", 405

    def __init__(self, method: str, allowed: Sequence[str], *, hint: str = "") -> None:
        super().__init__(f"{method} is not allowed here; use {', '.join(allowed)}{hint}")
        self.allowed = list(allowed)


class PayloadTooLargeError(HelixError):
    code, status = "payload_too_large", 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than the limit of {limit} bytes", details={"limit": limit}
        )
        self.limit = limit


class RequestTimeoutError(HelixError):
    code, status = "request_timeout", 408

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} s")


class TooManyConnectionsError(HelixError):
    code, status = "too_many_connections", 429

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this session already has {limit} open WebSockets; close one and connect again",
            details={"limit": limit},
        )


class UnavailableError(HelixError):
    code, status = "unavailable", 503

    def __init__(self, message: str = "the server is starting or shutting down; try again shortly") -> None:
        super().__init__(message)


# Exception class -> (code, HTTP status). The nearest class in an exception's MRO wins.
ERROR_TABLE: dict[type[BaseException], tuple[str, int]] = {
    InvalidRequestError: ("invalid_request", 400),
    AgentNotFoundError: ("agent_not_found", 404),
    CheckpointNotFoundError: ("checkpoint_not_found", 404),
    RouteNotFoundError: ("not_found", 404),
    MethodNotAllowedError: ("method_not_allowed", 405),
    RequestTimeoutError: ("request_timeout", 408),
    InvalidRunStateError: ("invalid_run_state", 409),
    PayloadTooLargeError: ("payload_too_large", 413),
    TooManyConnectionsError: ("too_many_connections", 429),
    HookFailedError: ("hook_failed", 500),
    LLMProviderError: ("llm_error", 502),
    UnavailableError: ("unavailable", 503),
    DirectoryClosedError: ("unavailable", 503),
    ActorStoppedError: ("unavailable", 503),
    SessionLockedError: ("session_locked", 503),
    StoreFileError: ("storage_error", 500),
    SchemaTooNewError: ("storage_error", 500),
    HelixError: ("internal_error", 500),
}

_SAFE_MESSAGES: dict[str, str] = {
    "unavailable": "the server cannot take this request right now; try again shortly",
    "session_locked": "this session is owned by another server process",
    "storage_error": "this session's storage cannot be read; an operator has been told",
}


def classify(exc: BaseException) -> tuple[str, int] | None:
    """``(code, status)`` for a known exception class, ``None`` for anything else (a bug)."""
    for cls in type(exc).__mro__:
        entry = ERROR_TABLE.get(cls)
        if entry is not None:
            return entry
    return None


def error_payload(exc: BaseException, logger: logging.Logger | None = None) -> tuple[int, dict[str, Any]]:
    """``(status, {"error": {...}})`` for any exception. Unknown exceptions (and store or actor errors,
    whose messages name server paths) are logged here and described without internals."""
    entry = classify(exc)
    if entry is None:
        if logger is not None:
            logger.error("unhandled error while answering a request", exc_info=exc)
        return 500, {"error": {"code": "internal_error", "message": "internal server error"}}
    code, status = entry
    if isinstance(exc, HelixError) and code not in _SAFE_MESSAGES:
        body = exc.to_dict()
        body["code"] = code
        if code == "internal_error" and logger is not None:
            logger.error("internal error while answering a request", exc_info=exc)
        return status, {"error": body}
    if logger is not None:
        logger.warning("%s while answering a request: %s", code, exc)
    return status, {"error": {"code": code, "message": _SAFE_MESSAGES.get(code, "internal server error")}}


def error_headers(exc: BaseException) -> dict[str, str]:
    """Headers an error answer needs (``Allow`` for 405, ``Retry-After`` for 503)."""
    if isinstance(exc, MethodNotAllowedError):
        return {"Allow": ", ".join(exc.allowed)}
    entry = classify(exc)
    if entry is not None and entry[1] == 503:
        return {"Retry-After": "1"}
    return {}
