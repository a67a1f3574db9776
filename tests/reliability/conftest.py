"""Servers for the reliability tests: real Hypercorn processes (see :mod:`.process`), one per test module
that needs it, each in its own temporary "jail" directory (its working directory; the data dir is
``<jail>/data``, the log lives outside the jail), killed with its whole process group at teardown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .process import Served


def _serve(tmp_path_factory: pytest.TempPathFactory, profile: str, **env: str) -> Iterator[Served]:
    base = tmp_path_factory.mktemp(f"reliability-{profile}")
    jail = base / "jail"
    jail.mkdir()
    server = Served(
        data_dir=jail / "data", log_path=base / "hypercorn.log", profile=profile, env=env, cwd=jail
    )
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, "strict")


@pytest.fixture
def sid() -> str:
    return f"r-{uuid.uuid4().hex[:12]}"


def jail_of(server: Served) -> Path:
    assert server.cwd is not None
    return server.cwd
