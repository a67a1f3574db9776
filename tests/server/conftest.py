"""Fixtures that run the server in a real Hypercorn process (``python -m hypercorn -k trio``).

Each process runs in its own process group, is awaited on ``/healthz`` before a test uses it, and is killed
with its whole group at teardown. The three long-lived servers (``plain``, ``hooks``, ``endpoints``) are
shared by the session's tests; tests keep apart by using fresh session ids.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.hypercorn_process import wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
APP = "tests.server.served_app:server"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A Hypercorn process serving ``tests/server/served_app.py``."""

    data_dir: Path
    log_path: Path
    profile: str = "plain"
    env: dict[str, str] = field(default_factory=dict)
    root_path: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.root_path}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.root_path}"

    def start(self, *, port: int | None = None) -> ServerProcess:
        self.port = port or free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HELIX_TEST_DATA_DIR": str(self.data_dir),
            "HELIX_TEST_PROFILE": self.profile,
            **self.env,
        }
        command = [sys.executable, "-m", "hypercorn", "-k", "trio", "--bind", f"127.0.0.1:{self.port}"]
        if self.root_path:
            command += ["--root-path", self.root_path]
        command.append(APP)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.base_url, timeout=STARTUP_TIMEOUT, log=self.log)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """SIGTERM goes to Hypercorn's main process only, which shuts its worker down gracefully (a
        SIGTERM to the whole group would kill the worker outright); SIGKILL goes to the whole group.
        Whatever is left of the group is killed at the end. Returns the main process's exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            if process.poll() is None:
                if sig == signal.SIGKILL:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.send_signal(sig)
                try:
                    return process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    return process.wait(timeout=timeout)
            return process.returncode
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _server(tmp_path_factory: pytest.TempPathFactory, profile: str, **env: str) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp(f"server-{profile}")
    server = ServerProcess(data_dir=base / "data", log_path=base / "hypercorn.log", profile=profile, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _server(tmp_path_factory, "plain", HELIX_TEST_HEARTBEAT="0.3")


@pytest.fixture(scope="session")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _server(tmp_path_factory, "hooks")


@pytest.fixture(scope="session")
def endpoints_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _server(tmp_path_factory, "endpoints", HELIX_TEST_MAX_WS="3")


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own (not yet started: set ``profile``, ``env``, ``root_path``, then
    ``start()``); stopped at teardown."""
    server = ServerProcess(data_dir=tmp_path / "data", log_path=tmp_path / "hypercorn.log")
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
async def http(plain_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=plain_server.base_url, timeout=20.0) as client:
        yield client


@pytest.fixture
def sid() -> str:
    """A fresh session id."""
    return f"s-{uuid.uuid4().hex[:12]}"
