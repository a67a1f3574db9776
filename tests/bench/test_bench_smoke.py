"""Keeps the benchmark suite runnable: workload 1 (bench/stream.py) at a tiny size, through real Hypercorn
processes and a separate trio-websocket client process, with the result keys run.py reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import stream
from bench.run import goals, table

pytestmark = pytest.mark.slow


def test_stream_pipeline_runs_at_a_tiny_size(tmp_path: Path) -> None:
    result = stream.bench_pipeline(
        tmp_path, repeats=1, concurrencies=(1, 2), sessions={1: 2, 2: 2}, chunks=20, timeout=30.0
    )

    assert result["chunks_per_run"] == 25  # run_started, step_started, 20 text deltas, 3 closing chunks
    for key in ("ratio_vs_ceiling", "chunks_per_s", "ceiling_chunks_per_s"):
        assert set(result[key]) == {"1", "2"}
        for figure in result[key].values():
            assert set(figure) == {"median", "min", "max"}
            assert 0 < figure["min"] <= figure["median"] <= figure["max"]
    # CPU time is counted in 10-ms ticks: a run this small may read 0.
    assert all(figure["median"] >= 0 for figure in result["server_cpu_us_per_chunk"].values())
    for key in ("latency_ms", "ceiling_latency_ms"):
        for quantiles in result[key].values():
            assert (
                quantiles["p50"]["median"] >= 0 and quantiles["p99"]["median"] >= quantiles["p50"]["median"]
            )

    results = {"stream": result}
    assert [g["name"] for g in goals(results)] == ["stream ratio vs ceiling @1", "stream ratio vs ceiling @2"]
    assert "stream @2 sessions" in table({**results, "goals": goals(results)})


def test_profile_summary_buckets_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "run (trio/_run.py:1);_Connection._send_locked (helix/server/websocket.py:9);"
        "TrioWebsocket.send (quart_trio/wrappers/websocket.py:7) 3\n"
        "run (trio/_run.py:1);EpollIOManager.get_events (trio/_core/_io_epoll.py:2) 1\n"
    )
    summary = stream.summarize_profile(raw)
    assert summary["samples"] == 4
    assert summary["buckets_pct"] == {
        "WebSocket send: quart -> hypercorn -> wsproto -> socket": 75.0,
        "idle: waiting in epoll": 25.0,
    }


def test_ceiling_app_replays_recorded_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = tmp_path / "frames.json"
    frames.write_text(
        '{"ack": "{\\"type\\":\\"ack\\"}", "frames": ["{\\"seq\\":1,\\"ts\\":1700000000000,\\"x\\":1}"]}'
    )
    monkeypatch.setenv("HELIX_CEILING_FRAMES", str(frames))
    import importlib

    import bench.ceiling_app as ceiling_app

    module = importlib.reload(ceiling_app)
    assert module.ACK == '{"type":"ack"}'
    assert module.FRAMES == [('{"seq":1,"ts":', ',"x":1}')]


def test_latency_by_phase_splits_the_first_and_last_second_from_the_steady_part() -> None:
    from bench.ws_client import by_phase

    # (emit time ms, latency ms): a slow start, a quick middle, a slow end.
    emitted = [(0.0, 90.0), (500.0, 80.0), (1500.0, 2.0), (2500.0, 3.0), (3500.0, 60.0), (4000.0, 70.0)]
    phases = by_phase(emitted, 1000.0)
    assert {name: figure["chunks"] for name, figure in phases.items()} == {"start": 2, "steady": 2, "end": 2}
    assert phases["steady"]["p99"] <= 3.0
    assert phases["start"]["p50"] == 85.0
    assert by_phase([], 1000.0) == {}
