"""What one server's routes share: the runtime, hooks, endpoints, limits and metrics. Built by
``create_agent_server`` and kept on the server object; nothing here is global."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from ..errors import HookFailedError
from ..runtime import AgentRuntime
from .hooks import AbortResult, AuthorizeContext, ExecutionState, ServerHooks, Transport, UsageStore
from .metrics import ServerMetrics

C = TypeVar("C")
R = TypeVar("R")

EndpointHandler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """Limits of one server. ``max_body_bytes``: request bodies (413 above it); ``discard_body_bytes``: how
    much of an oversized body is read and thrown away so the connection can be reused (beyond it the 413
    closes the connection); ``body_timeout``: seconds a body may take to arrive (408);
    ``max_ws_frame_bytes``: a WebSocket command frame (close 1009 above it);
    ``max_websockets_per_session``: open WebSockets per session (429 at the handshake above it);
    ``ws_send_timeout``: seconds one frame may wait for a client that stopped reading (close 4008);
    ``sse_heartbeat``: seconds between SSE comment lines while nothing else is sent;
    ``json_max_depth``: nesting of request JSON."""

    max_body_bytes: int = 8 * 1024 * 1024
    discard_body_bytes: int = 64 * 1024 * 1024
    body_timeout: float = 60.0
    max_ws_frame_bytes: int = 1024 * 1024
    max_websockets_per_session: int = 100
    ws_send_timeout: float = 60.0
    sse_heartbeat: float = 15.0
    json_max_depth: int = 64

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_ws_frame_bytes", "max_websockets_per_session", "json_max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("body_timeout", "ws_send_timeout", "sse_heartbeat"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")


@dataclass(kw_only=True)
class ServerServices:
    runtime: AgentRuntime
    hooks: ServerHooks
    endpoints: Mapping[str, EndpointHandler]
    limits: ServerLimits
    metrics: ServerMetrics
    logger: logging.Logger
    env: Any
    usage_store: UsageStore | None = None
    accepting: bool = False
    websockets: Counter[str] = field(default_factory=Counter)

    async def call_hook(self, name: str, hook: Callable[[C], Awaitable[R]], ctx: C) -> R:
        """Run a hook; anything it raises becomes :class:`HookFailedError` (500 ``hook_failed``)."""
        try:
            return await hook(ctx)
        except trio.Cancelled:
            raise
        except Exception as exc:
            self.logger.error("the %s hook raised", name, exc_info=exc)
            raise HookFailedError(name) from exc

    async def execution_state(self, session_id: str) -> ExecutionState:
        return await ExecutionState.load(self.runtime, session_id)

    async def authorize(
        self,
        *,
        request: Any,
        route: str,
        method: str,
        transport: Transport,
        session_id: str | None,
        body: dict[str, Any] | None = None,
    ) -> AbortResult | None:
        """``None`` to go on, or the refusal to send. Without an ``authorize`` hook everything passes."""
        hook = self.hooks.authorize
        if hook is None:
            return None
        state = None if session_id is None else await self.execution_state(session_id)
        ctx = AuthorizeContext(
            env=self.env,
            request=request,
            route=route,
            method=method,
            transport=transport,
            session_id=session_id,
            execution_state=state,
            body=body,
        )
        result = await self.call_hook("authorize", hook, ctx)
        if result is not None and not isinstance(result, AbortResult):
            self.logger.error("the authorize hook returned %r; expected None or an AbortResult", result)
            raise HookFailedError("authorize")
        return result
