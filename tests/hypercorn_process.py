"""What every test and benchmark that runs a real Hypercorn process needs: waiting until it answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_until_healthy(
    process: subprocess.Popen[bytes], base_url: str, *, timeout: float, log: Callable[[], str]
) -> None:
    """Poll ``GET {base_url}/healthz`` until it answers 200. Raises RuntimeError with the server's log if
    the process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hypercorn exited with {process.returncode}:\n{log()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)  # polling a process that is starting; no race is hidden by this
    raise RuntimeError(f"hypercorn did not become healthy in {timeout} s:\n{log()[-4000:]}")
