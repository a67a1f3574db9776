"""Run an example's server under Hypercorn in a subprocess on a free 127.0.0.1 port (examples only).

``python -m hypercorn -k trio --bind 127.0.0.1:<port> examples/<name>.py:server`` is what a deployment
runs too; the examples start it themselves so that each is one command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def hypercorn_process(example: str, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``examples/<example>.py:server`` with a fresh data directory; yield its base URL. The server
    is stopped with SIGTERM (a graceful shutdown) when the block ends."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=f"helix-{example}-") as data_dir:
        env = {
            **os.environ,
            "HELIX_DATA_DIR": data_dir,
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
        }
        log_path = Path(data_dir) / "hypercorn.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hypercorn",
                    "-k",
                    "trio",
                    "--bind",
                    f"127.0.0.1:{port}",
                    f"{HERE / example}.py:server",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(process, base_url, timeout, log_path)
            yield base_url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # Hypercorn's main process stops its worker gracefully
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hypercorn exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"hypercorn did not start in {timeout} s:\n{log_path.read_text(errors='replace')}")
