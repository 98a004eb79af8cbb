"""Warm serving: latency p50/p99 and throughput at concurrency 1, 8 and 32 against the
iris example deployed with the local provider (``slml deploy``: the real bundle, in its
own environment), against a hand-written Starlette app serving the same model file
(benchmarks/baseline_app.py) under uvicorn with the same settings (1 worker, loopback,
no access log). Also the peak RSS (VmHWM) of each server process after the load.

The load generator (benchmarks/loadgen.py) runs in its own process. Each repetition
runs both servers back to back, alternating which goes first; each run is a warm-up
then a bounded measurement (``--requests`` or ``--seconds``, whichever comes first).
Target: throughput at concurrency 8 at least 0.8x the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.common import (
    IRIS_ROW,
    PYTHON,
    ROOT,
    WORK,
    env_with,
    iris_project,
    row,
    slml_cli,
    write_result,
)
from benchmarks.procs import Server, free_port, kill_group, memory_kb, start_server, stop_group

BODY = json.dumps({"instances": [IRIS_ROW]})
CONCURRENCY = (1, 8, 32)


def load(url: str, *, concurrency: int, requests: int, seconds: float) -> dict[str, Any]:
    cmd = [str(PYTHON), "-m", "benchmarks.loadgen", "--url", f"{url}/predict", "--body", BODY,
           "--concurrency", str(concurrency), "--requests", str(requests),
           "--duration", str(seconds)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 120)
    result = json.loads(out.stdout)
    if result["failures"]:
        raise RuntimeError(f"{url}: {result['failures']} failed requests: {result['statuses']}")
    return result


def deploy_slml(project: Path, cache: Path, stack: ExitStack) -> tuple[str, int]:
    """``slml deploy`` the project; registers destroy (and a kill of its process group)."""
    env = env_with(SLML_CACHE_DIR=str(cache))
    info = json.loads(slml_cli(["deploy", "--provider", "local", "--json"], project=project,
                               env=env).stdout)  # fmt: skip
    pid = int(info["outputs"]["pid"])
    stack.callback(kill_group, pid)
    stack.callback(subprocess.run, [str(PYTHON.with_name("slml")), "destroy"], cwd=project,
                   env=env, capture_output=True, timeout=120)  # fmt: skip
    return str(info["url"]), pid


def start_baseline(model_file: Path, log: Path) -> Server:
    port = free_port()
    cmd = [str(PYTHON), str(ROOT / "benchmarks" / "baseline_app.py"), "--model",
           str(model_file), "--port", str(port)]  # fmt: skip
    return start_server(cmd, url=f"http://127.0.0.1:{port}", log=log, env=env_with())


def measure(reps: int, requests: int, seconds: float) -> tuple[dict, dict]:
    project = iris_project("serving")
    results: dict[str, dict[int, list[dict[str, Any]]]] = {
        "slml": {c: [] for c in CONCURRENCY}, "baseline": {c: [] for c in CONCURRENCY}
    }  # fmt: skip
    with ExitStack() as stack:
        url, pid = deploy_slml(project, WORK / "cache-serving", stack)
        base = start_baseline(project / "artifacts/iris/model/model.joblib",
                              WORK / "serving" / "baseline.log")  # fmt: skip
        stack.callback(stop_group, base.proc)
        urls = {"slml": url, "baseline": base.url}
        for c in CONCURRENCY:
            for rep in range(reps):
                order = ["slml", "baseline"] if rep % 2 == 0 else ["baseline", "slml"]
                for name in order:
                    load(urls[name], concurrency=c, requests=min(500, requests), seconds=3)
                    results[name][c].append(
                        load(urls[name], concurrency=c, requests=requests, seconds=seconds)
                    )
        memory = {"slml": memory_kb(pid, "VmHWM"), "baseline": memory_kb(base.pid, "VmHWM")}
    return results, memory


def rows(results: dict, memory: dict) -> list[dict[str, Any]]:
    out = []
    base = "hand-written Starlette + uvicorn (1 worker)"
    for c in CONCURRENCY:
        s, b = results["slml"][c], results["baseline"][c]
        target = {"target": "≥ 0.8x", "limit": 0.8} if c == 8 else {}
        out.append(row(f"throughput, concurrency {c}", "req/s",
                       [r["throughput_rps"] for r in s], [r["throughput_rps"] for r in b],
                       baseline_name=base, higher_is_better=True, **target))  # fmt: skip
        for q in ("p50", "p99"):
            out.append(row(f"latency {q}, concurrency {c}", "ms",
                           [r["latency_ms"][q] for r in s], [r["latency_ms"][q] for r in b],
                           baseline_name=base))  # fmt: skip
    out.append(
        row(
            "peak RSS of the server after the load (VmHWM)",
            "MB",
            [memory["slml"] / 1024],
            [memory["baseline"] / 1024],
            baseline_name=base,
        )
    )
    return out  # fmt: skip


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="warm-serving benchmark")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    results, memory = measure(args.reps, args.requests, args.seconds)
    params = {**vars(args), "body": BODY, "python": sys.version.split()[0], "raw": results}
    return write_result("serving", rows(results, memory), params)


if __name__ == "__main__":
    print(main())
