"""The HTTP / WebSocket / SSE server: ``create_agent_server`` and its hooks (DESIGN §6)."""

from .app import AgentServer, create_agent_server
from .endpoints import EndpointContext
from .hooks import (
    AbortResult,
    AuthorizeContext,
    CompleteContext,
    ExecutionState,
    HookContext,
    ServerHooks,
    TransformContext,
    UsageStore,
)
from .services import ServerLimits

__all__ = [
    "AbortResult",
    "AgentServer",
    "AuthorizeContext",
    "CompleteContext",
    "EndpointContext",
    "ExecutionState",
    "HookContext",
    "ServerHooks",
    "ServerLimits",
    "TransformContext",
    "UsageStore",
    "create_agent_server",
]
