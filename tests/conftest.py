"""Fixtures shared by every test package."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing


@pytest.fixture
def autojump_clock(monkeypatch: pytest.MonkeyPatch) -> trio.testing.MockClock:
    """pytest-trio's autojump clock, except that mock time stands still while a worker thread runs.

    Trio's autojump counts a task waiting for ``trio.to_thread.run_sync`` as blocked, so mock time would
    jump to the next deadline while real work (a new session's file is created in a worker thread) takes
    real time: a test's far deadline would fire before the activation it waits for had finished. The
    fixture counts the calls in flight (whatever limiter they use) and holds the clock while any is.

    ``MockClock`` cannot be subclassed, so this wraps the instance's ``_autojump``, the private hook the
    run loop calls when it would jump. Should trio rename it, the wrapper is never called and tests fail
    loudly (deadlines fire early); they cannot pass by accident.
    """
    clock = trio.testing.MockClock(autojump_threshold=0)
    in_flight = 0
    run_sync = trio.to_thread.run_sync

    async def counted_run_sync(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight
        in_flight += 1
        try:
            return await run_sync(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(trio.to_thread, "run_sync", counted_run_sync)
    jump = clock._autojump

    def jump_unless_a_thread_runs() -> None:
        if in_flight:
            return  # the run loop polls again at once, and the thread's result wakes it
        jump()

    clock._autojump = jump_unless_a_thread_runs  # type: ignore[method-assign]
    return clock
