"""A native load generator for the serving benchmark: ``hey`` (Go, Debian's package),
installed with apt-get when missing (as root), driven with a bounded request count, its
per-request CSV parsed here, and its own CPU time read from the kernel (``wait4``
rusage) so every run shows how much of the machine the client itself used.

    python -m benchmarks.hey --url http://127.0.0.1:PORT/predict --body '{...}' -c 8 -n 3000

Loopback only. The asyncio client in benchmarks/loadgen.py stays for the reliability
tests (it counts errors by kind); it saturates near 1,800 req/s, which is why the
benchmark does not use it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from benchmarks.loadgen import LOOPBACK, percentile


class LoadGenError(RuntimeError):
    """hey is missing and cannot be installed, or a run failed."""


def ensure_hey() -> str:
    """The path of ``hey``; installs Debian's package when it is missing and we are
    root. Raises LoadGenError saying what to do otherwise."""
    found = shutil.which("hey")
    if found:
        return found
    if os.geteuid() != 0:
        raise LoadGenError("hey is not installed: `sudo apt-get install -y hey`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-qq", "hey"], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "hey"]):  # fmt: skip
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
        if shutil.which("hey"):
            return str(shutil.which("hey"))
    raise LoadGenError("apt-get could not install hey; install it (or wrk) by hand")


def run_hey(
    url: str, body: str, *, concurrency: int, requests: int, timeout: float = 300
) -> dict[str, Any]:
    """``requests`` POSTs of ``body`` to ``url`` over ``concurrency`` keep-alive
    connections. Returns count, failures, statuses, elapsed seconds, throughput, latency
    percentiles (ms) and the client's CPU seconds (``client_cpu_s``, ``client_cores``:
    CPU seconds per second of the run)."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise ValueError(f"{url}: the benchmark only targets loopback addresses")
    cmd = [ensure_hey(), "-n", str(requests), "-c", str(concurrency), "-m", "POST",
           "-T", "application/json", "-d", body, "-o", "csv", "-t", "20", url]  # fmt: skip
    before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise LoadGenError(f"hey did not finish {requests} requests in {timeout} s") from None
    wall = time.perf_counter() - started
    cpu = _children_cpu() - before  # only hey was reaped in between
    if proc.returncode != 0:
        raise LoadGenError(f"hey exited {proc.returncode}: {err.decode(errors='replace')}")
    return summarize(out.decode(), concurrency=concurrency, wall_s=wall, cpu_s=cpu)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summarize(text: str, *, concurrency: int, wall_s: float, cpu_s: float) -> dict[str, Any]:
    """The run's figures from hey's CSV (one row per request: response-time in
    seconds, ..., status-code, offset from the start in seconds)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    statuses: dict[str, int] = {}
    latencies, ends = [], []
    for r in rows:
        status = r.get("status-code", "error") or "error"
        statuses[status] = statuses.get(status, 0) + 1
        seconds = float(r["response-time"])
        ends.append(float(r["offset"]) + seconds)
        if status.startswith("2"):
            latencies.append(seconds * 1000)
    elapsed = max(ends) if ends else wall_s
    failures = len(rows) - len(latencies)
    return {
        "concurrency": concurrency,
        "count": len(rows),
        "failures": failures,
        "statuses": statuses,
        "elapsed_s": elapsed,
        "throughput_rps": len(latencies) / elapsed if elapsed else 0.0,
        "latency_ms": {q: percentile(latencies, float(q[1:])) for q in ("p50", "p90", "p99")},
        "client_cpu_s": cpu_s,
        "client_cores": cpu_s / wall_s if wall_s else float("nan"),
        "client_wall_s": wall_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("-n", "--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    result = run_hey(args.url, args.body, concurrency=args.concurrency, requests=args.requests)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
