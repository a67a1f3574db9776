"""Crash soak for the engine: SIGKILL a process mid-run many times and check recovery after each kill.

Each iteration starts a child process that runs a slow scripted agent and prints every chunk it
receives, kills it with SIGKILL at a random moment, then reopens the session in this process and checks:
every chunk the child received is in history with the same seq and payload, seqs are consecutive, the
run that died has exactly one terminal chunk (`run_interrupted`, reason `crash`), the session resumes to
completion, and the file passes `PRAGMA integrity_check`.

    python bench/soak_engine_crash.py [--iterations 200] [--seed 1]

Prints the counts as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helix.test_crash_recovery import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="helix-soak-") as scratch:
        counts = trio.run(soak, Path(scratch) / "data", args.iterations, args.seed)
    counts_out = {**counts, "seconds": round(time.perf_counter() - started, 1), "command": " ".join(sys.argv)}
    print(json.dumps(counts_out))


if __name__ == "__main__":
    main()
