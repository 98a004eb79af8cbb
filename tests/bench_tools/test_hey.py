"""The serving benchmark's native client: hey's CSV parsed into the run's figures, and a
real bounded run against the trivial endpoint, with hey's own CPU time recorded."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from benchmarks.hey import run_hey, summarize
from benchmarks.procs import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
CSV = """response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0010,0.0002,0.0000,0.0000,0.0008,0.0000,200,0.0001
0.0030,0.0000,0.0000,0.0000,0.0029,0.0000,200,0.0011
0.0020,0.0000,0.0000,0.0000,0.0019,0.0000,500,0.0041
"""


def test_summarize_reads_latencies_statuses_and_the_span_of_the_run():
    result = summarize(CSV, concurrency=1, wall_s=0.5, cpu_s=0.1)
    assert result["count"] == 3 and result["failures"] == 1
    assert result["statuses"] == {"200": 2, "500": 1}
    assert result["elapsed_s"] == pytest.approx(0.0061)  # last offset + its response time
    assert result["throughput_rps"] == pytest.approx(2 / 0.0061)
    assert result["latency_ms"]["p50"] == pytest.approx(2.0)  # of the two 200s
    assert result["client_cores"] == pytest.approx(0.2)


def test_run_hey_refuses_anything_but_loopback():
    with pytest.raises(ValueError, match="loopback"):
        run_hey("http://10.0.0.1:80/predict", "{}", concurrency=1, requests=1)


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey is not installed")
def test_a_bounded_run_against_the_trivial_endpoint(tmp_path):
    port = free_port()
    cmd = [sys.executable, str(ROOT / "benchmarks" / "trivial_server.py"), "--port", str(port)]
    server = start_server(cmd, url=f"http://127.0.0.1:{port}", log=tmp_path / "log")
    try:
        result = run_hey(f"{server.url}/predict", '{"instances": [[1, 2, 3, 4]]}',
                         concurrency=4, requests=400)  # fmt: skip
    finally:
        server.stop()
    assert result["count"] == 400 and result["failures"] == 0
    assert result["throughput_rps"] > 0 and result["client_cpu_s"] > 0
