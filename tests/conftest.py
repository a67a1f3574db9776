"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest
import trio
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """pytest-trio's autojump clock, except that mock time stands still while a worker thread runs.

    Trio's autojump counts a task waiting for ``trio.to_thread`` as blocked, so mock time would jump to
    the next deadline while real work (a new session's file is created in a worker thread) takes real
    time: a test's far deadline would fire before the activation it waits for had finished. Only threads
    on trio's default limiter count; store closes use the directory's own limiter (see
    ``tests/actors/support.py``'s ``settled``).

    ``MockClock`` cannot be subclassed, so this wraps the instance's ``_autojump``, the private hook the
    run loop calls when it would jump. Should trio rename it, the wrapper is never called and tests fail
    loudly (deadlines fire early); they cannot pass by accident.
    """
    clock = trio.testing.MockClock(autojump_threshold=0)
    jump = clock._autojump

    def jump_unless_a_thread_runs() -> None:
        if trio.to_thread.current_default_thread_limiter().borrowed_tokens:
            return  # the run loop polls again at once, and the thread's result wakes it
        jump()

    clock._autojump = jump_unless_a_thread_runs  # type: ignore[method-assign]
    return clock
