"""Two processes never write one session file: the second to ask for a live actor gets a clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from stores import file_for_name

from .support import Journal, scripted_directory

CHILD = Path(__file__).with_name("lock_child.py")


async def ask_from_another_process(data_dir: Path, name: str) -> dict[str, Any]:
    done = await trio.run_process(
        [sys.executable, str(CHILD), str(data_dir), name],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


@pytest.mark.slow
async def test_second_process_gets_session_locked_error_while_this_one_holds_the_actor(
    data_dir: Path, journal: Journal
) -> None:
    async with scripted_directory(data_dir, journal, mock_clock=False) as directory:
        await directory.call("shared", "hello")
        with trio.fail_after(60):
            answer = await ask_from_another_process(data_dir, "shared")
        assert answer == {
            "error": "SessionLockedError",
            "path": str(file_for_name(data_dir, "shared")),
            "live": 0,  # the failed activation left nothing behind in the other process
        }
        assert directory.is_live("shared")
        assert await directory.call("shared", "still mine") == "still mine"
        # Once this process lets go of the actor, the other one may have it.
        assert await directory.evict("shared") is True
        with trio.fail_after(60):
            assert await ask_from_another_process(data_dir, "shared") == {"ok": True}
