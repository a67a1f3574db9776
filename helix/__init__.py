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
from .status import RunStatus
from .tools import Tool, ToolContext, tool

__all__ = [
    "Agent",
    "AgentExecutionHandle",
    "AgentFactoryContext",
    "AgentNotFoundError",
    "AgentRegistry",
    "AgentRuntime",
    "CheckpointNotFoundError",
    "HelixError",
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
    "Usage",
    "tool",
]
