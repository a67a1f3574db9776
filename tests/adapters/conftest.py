from __future__ import annotations

import pytest
import trio

from tests.adapters.fake_providers import FakeProvider, serve_fake_provider


@pytest.fixture
async def provider(nursery: trio.Nursery) -> FakeProvider:
    """A fake OpenAI + Anthropic server on 127.0.0.1 for the length of one test."""
    started: FakeProvider = await nursery.start(serve_fake_provider)
    return started
