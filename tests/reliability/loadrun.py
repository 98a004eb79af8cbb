"""Run benchmarks.loadgen in its own process against a server and return its summary."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

ROWS_BODY = '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


def run_load(
    url: str, *, concurrency: int, requests: int, duration: float, body: str = ROWS_BODY
) -> dict[str, Any]:
    """POST ``body`` to ``url`` from a separate process; bounded by count and seconds."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        "--url",
        url,
        "--body",
        body,
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--duration",
        str(duration),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    return json.loads(proc.stdout)
