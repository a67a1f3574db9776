"""A real Hypercorn process serving ``tests/reliability/served.py`` (also used by ``bench/soak_crash.py``).

Each process runs in its own process group on a free 127.0.0.1 port, is awaited on ``/healthz``, and is
killed with its whole group: :meth:`Served.kill` is the crash (SIGKILL to the group), :meth:`Served.stop`
the graceful end (SIGTERM to Hypercorn's main process, then SIGKILL to whatever is left of the group).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.hypercorn_process import wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
APP = "tests.reliability.served:server"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """One server process; ``start`` may be called again after ``kill`` / ``stop`` (a restart, on a new
    port: the old one may linger in TIME_WAIT)."""

    data_dir: Path
    log_path: Path
    profile: str = "plain"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    """The server's working directory (a relative path it wrongly wrote to would land there)."""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Served:
        assert self.process is None, "already running"
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HELIX_TEST_DATA_DIR": str(self.data_dir),
            "HELIX_TEST_PROFILE": self.profile,
            **self.env,
        }
        command = [sys.executable, "-m", "hypercorn", "-k", "trio", "--bind", f"127.0.0.1:{self.port}", APP]
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} on port {self.port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd or REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        try:
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        wait_until_healthy(self.process, self.base_url, timeout=STARTUP_TIMEOUT, log=self.log)

    def kill(self) -> None:
        """SIGKILL the whole process group (the crash) and reap the main process."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        """A graceful shutdown (SIGTERM to Hypercorn's main process); the group is killed in any case."""
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
