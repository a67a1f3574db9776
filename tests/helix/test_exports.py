import helix

EXPECTED_API = sorted(
    [
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
)


def test_public_api_is_exactly_the_pinned_list():
    assert sorted(helix.__all__) == EXPECTED_API
    assert all(hasattr(helix, name) for name in helix.__all__)
