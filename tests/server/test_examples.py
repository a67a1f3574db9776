"""Each example runs offline, start to finish, against the Hypercorn process it starts itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_example(name: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / f"{name}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_quickstart_streams_a_run_and_time_travels_from_a_middle_checkpoint():
    out = run_example("quickstart")
    assert "run_completed Done: your cart holds a red mug." in out
    assert "run_resumed cpv1-" in out
    assert "state: {'cart': ['blue mug']}" in out
    assert "the first branch still ends with: Done: your cart holds a red mug." in out


@pytest.mark.slow
def test_hooks_example_refuses_strangers_and_supersedes_a_running_run():
    out = run_example("hooks_auth")
    assert "nobody reading alice's session: 401 unauthorized" in out
    assert "bob reading alice's session: 403 forbidden" in out
    assert "the first run ended interrupted (superseded)" in out
    assert "the second run ended completed" in out


@pytest.mark.slow
def test_custom_endpoint_example_serves_json_markdown_and_405():
    out = run_example("custom_endpoint")
    assert "'lastAnswer': 'Hello! How can I help?'" in out
    assert "POST /transcript -> 200 text/markdown" in out
    assert "# First visit" in out
    assert "DELETE /transcript -> 405" in out
