"""helix-agents: an actor-per-session runtime for AI agents.

Everything a user needs is importable from here; ``__all__`` is the contract (pinned by a test).
"""

from .agent import Agent
from .errors import (
    AgentNotFoundError,
    CheckpointNotFoundError,
    HelixError,
    InvalidRequestError,
    InvalidRunStateError,
    LLMProviderError,
)
from .handle import AgentExecutionHandle, RunResult
from .llm import (
    LLMAdapter,
    LLMAdapterContext,
    LLMEvent,
    Message,
    ReasoningDelta,
    StepFinished,
    StepRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
)
from .registry import AgentFactoryContext, AgentRegistry
from .runtime import AgentRuntime
from .server import (
    AbortResult,
    AgentServer,
    AuthorizeContext,
    CompleteContext,
    EndpointContext,
    ExecutionState,
    HookContext,
    ServerHooks,
    ServerLimits,
    TransformContext,
    UsageStore,
    create_agent_server,
)
from .status import RunStatus
from .tools import Tool, ToolContext, tool

__all__ = [
    "AbortResult",
    "Agent",
    "AgentExecutionHandle",
    "AgentFactoryContext",
    "AgentNotFoundError",
    "AgentRegistry",
    "AgentRuntime",
    "AgentServer",
    "AuthorizeContext",
    "CheckpointNotFoundError",
    "CompleteContext",
    "EndpointContext",
    "ExecutionState",
    "HelixError",
    "HookContext",
    "InvalidRequestError",
    "InvalidRunStateError",
    "LLMAdapter",
    "LLMAdapterContext",
    "LLMEvent",
    "LLMProviderError",
    "Message",
    "ReasoningDelta",
    "RunResult",
    "RunStatus",
    "ServerHooks",
    "ServerLimits",
    "StepFinished",
    "StepRequest",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolContext",
    "ToolSpec",
    "TransformContext",
    "Usage",
    "UsageStore",
    "create_agent_server",
    "tool",
]
