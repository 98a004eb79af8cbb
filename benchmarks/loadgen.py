"""A small asyncio HTTP/1.1 load generator, run in its own process so it does not share
the server's interpreter (and GIL):

    python -m benchmarks.loadgen --url http://127.0.0.1:PORT/predict --body '{...}' \
        --concurrency 8 --requests 2000 --duration 10

Each of ``concurrency`` workers holds one keep-alive connection and sends POSTs back to
back until ``requests`` have been sent in total or ``duration`` seconds have passed.
Prints one JSON object on stdout: count, failures (non-2xx or connection errors),
statuses, elapsed seconds, throughput (requests/s) and latency percentiles in ms.
Loopback only: the URL must point at 127.0.0.1 or localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Tally:
    """What the workers share: a request budget, a deadline and the results."""

    budget: int
    deadline: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    failures: int = 0

    def take(self) -> bool:
        if self.budget <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.budget -= 1
        return True

    def record(self, status: str, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status.startswith("2"):
            self.latencies.append(latency)
        else:
            self.failures += 1


def build_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    """(host, port, the raw request bytes) for a POST of ``body`` to ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host not in LOOPBACK:
        raise ValueError(f"{url}: the load generator only targets loopback addresses")
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{parts.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, int(parts.port or 80), head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> str:
    """Read one response; return its status code as a string."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _worker(host: str, port: int, request: bytes, tally: Tally) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while tally.take():
        start = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            reader, writer = conn
            writer.write(request)
            status = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            status, conn = "error", None
        tally.record(status, time.perf_counter() - start)
    if conn is not None:
        conn[1].close()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def run_load(
    url: str, body: bytes, *, concurrency: int, requests: int, duration: float
) -> dict[str, Any]:
    """Run the load and summarise it (see the module docstring)."""
    host, port, request = build_request(url, body)
    tally = Tally(budget=requests, deadline=time.perf_counter() + duration)
    started = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, request, tally) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    count = sum(tally.statuses.values())
    ms = [x * 1000 for x in tally.latencies]
    return {
        "concurrency": concurrency,
        "count": count,
        "failures": tally.failures,
        "statuses": tally.statuses,
        "elapsed_s": elapsed,
        "throughput_rps": len(ms) / elapsed if elapsed else 0.0,
        "latency_ms": {q: percentile(ms, float(q[1:])) for q in ("p50", "p90", "p99")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="the JSON body to POST")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    result = asyncio.run(
        run_load(
            args.url,
            args.body.encode(),
            concurrency=args.concurrency,
            requests=args.requests,
            duration=args.duration,
        )
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
