"""A process that runs a slow scripted agent and prints every chunk it receives, one JSON line each.

The crash-recovery test kills it with SIGKILL at a random moment; every line it printed is a chunk a
listener had received before the crash.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from adapters import ScriptedAdapter
from helix.runtime import AgentRuntime
from tests.helix.support import make_registry, tool_loop_script


async def main(data_dir: str, session_id: str, message: str) -> None:
    script = tool_loop_script(6)
    runtime = AgentRuntime(
        llm_adapter=lambda env, ctx: ScriptedAdapter(script, chars_per_chunk=4, delay=0.01),
        agents=make_registry(),
        data_dir=data_dir,
    )
    async with runtime:
        handle = await runtime.start(session_id, agent_type="worker", message=message)
        print("started", handle.run_id, flush=True)
        async for chunk in handle.stream():
            print("chunk", json.dumps(chunk, separators=(",", ":")), flush=True)
        print("finished", flush=True)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:4])
