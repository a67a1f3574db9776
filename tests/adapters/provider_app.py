"""The app the end-to-end adapter tests serve in a real Hypercorn process: ``hypercorn -k trio
tests.adapters.provider_app:server``.

Configured from the environment, which the test sets after starting its fake provider:
``HELIX_E2E_PROVIDER`` (``openai`` | ``anthropic``), ``HELIX_E2E_BASE_URL`` (the SDK's ``base_url`` of the
fake provider) and ``HELIX_TEST_DATA_DIR``.

One agent, ``shopkeeper``, with two tools: ``lookup_stock`` and ``reserve``. The adapter is the real
:class:`adapters.OpenAIAdapter` or :class:`adapters.AnthropicAdapter`, built once (as the README
recommends) and returned for every run.
"""

from __future__ import annotations

import os
from typing import Any

from adapters import AnthropicAdapter, OpenAIAdapter
from helix import Agent, AgentRegistry, tool
from helix.llm import LLMAdapter, LLMAdapterContext
from helix.server import create_agent_server

API_KEY = "test-key"
# The model each adapter asks for; the fake provider's stream reports its own (dated) model name.
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-fake-1"}
STOCK = {"apples": 12, "pears": 0}


@tool
async def lookup_stock(item: str) -> str:
    """How many of an item are in stock."""
    return f"{item}: {STOCK.get(item, 0)} in stock"


@tool
async def reserve(item: str, quantity: int) -> str:
    """Reserve some of an item for the customer."""
    return f"reserved {quantity} x {item}"


def build_adapter(provider: str, base_url: str) -> LLMAdapter:
    if provider == "openai":
        return OpenAIAdapter(model=MODELS[provider], api_key=API_KEY, base_url=base_url, max_retries=1)
    if provider == "anthropic":
        return AnthropicAdapter(
            model=MODELS[provider], api_key=API_KEY, base_url=base_url, max_retries=1, max_tokens=1024
        )
    raise ValueError(f"HELIX_E2E_PROVIDER must be openai or anthropic, not {provider!r}")


def build() -> Any:
    provider = os.environ.get("HELIX_E2E_PROVIDER", "openai")
    # Only the test's requests reach the adapter; this default is never contacted.
    adapter = build_adapter(provider, os.environ.get("HELIX_E2E_BASE_URL", "http://127.0.0.1:9"))

    def adapter_factory(env: Any, ctx: LLMAdapterContext) -> LLMAdapter:
        return adapter

    registry = AgentRegistry()
    registry.register(
        Agent(name="shopkeeper", system_prompt="You run a fruit shop.", tools=[lookup_stock, reserve])
    )
    return create_agent_server(
        llm_adapter=adapter_factory,
        agents=registry,
        data_dir=os.environ.get("HELIX_TEST_DATA_DIR", "./.helix-test"),  # opened only when served
        step_timeout=20.0,  # a run never hangs past the test's own deadlines
    )


server = build()
