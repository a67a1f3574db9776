from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters import ScriptedAdapter
from helix import AgentRegistry
from helix.runtime import AgentRuntime

from .support import make_registry, tool_loop_script

RuntimeFactory = Callable[..., Any]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def open_runtime(data_dir: Path) -> AsyncIterator[RuntimeFactory]:
    """``async with open_runtime(script=..., delay=...) as runtime:``"""

    @asynccontextmanager
    async def factory(
        script: Any = None,
        *,
        delay: float = 0.0,
        registry: AgentRegistry | None = None,
        adapter_factory: Any = None,
        **options: Any,
    ) -> AsyncIterator[AgentRuntime]:
        chosen_script = script if script is not None else tool_loop_script(2)
        runtime = AgentRuntime(
            llm_adapter=adapter_factory or (lambda env, ctx: ScriptedAdapter(chosen_script, delay=delay)),
            agents=registry or make_registry(),
            data_dir=data_dir,
            **options,
        )
        async with runtime:
            yield runtime

    yield factory
