"""Build time of ``slml build`` (the CLI, as a user runs it) for the local and the AWS
Lambda targets: cold (empty SLML_CACHE_DIR), warm (nothing changed) and after a
model-only change (the example retrained as a new version, then rebuilt).

Baseline, measured in the same run: a naive ``pip install --target`` of the same
requirements (binary wheels, pip's own download cache warm, as uv's is for slml),
which is what rebuilding without slml's lock-keyed cache costs on every change.
Target: a model-only rebuild under 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.bundle_size import LAMBDA_PIP, naive_install, requirements
from benchmarks.common import (
    WORK,
    env_with,
    fresh_dir,
    iris_project,
    row,
    slml_cli,
    summarize,
    train,
    write_result,
)


def build_seconds(project: Path, provider: str, cache: Path) -> float:
    env = env_with(SLML_CACHE_DIR=str(cache))
    start = time.perf_counter()
    slml_cli(["build", "--provider", provider], project=project, env=env)
    return time.perf_counter() - start


def naive_seconds(reqs: list[str], dest: Path, *, lambda_target: bool) -> float:
    start = time.perf_counter()
    naive_install(reqs, dest, lambda_target=lambda_target)
    return time.perf_counter() - start


def measure_target(provider: str, *, cold_runs: int, runs: int) -> dict[str, list[float]]:
    project = iris_project(f"build-time-{provider}")
    out: dict[str, list[float]] = {"cold": [], "warm": [], "model_only": []}
    cache = WORK / f"cache-build-{provider}"
    for _ in range(cold_runs):
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(project / ".slml", ignore_errors=True)
        out["cold"].append(build_seconds(project, provider, cache))
    for i in range(runs):
        out["warm"].append(build_seconds(project, provider, cache))
        train(project, version=str(i + 2), max_iter=100 + 10 * i)
        out["model_only"].append(build_seconds(project, provider, cache))
    shutil.rmtree(cache, ignore_errors=True)
    return out


def measure_naive(runs: int) -> dict[str, list[float]]:
    project = iris_project("build-time-naive")
    artifact = project / "artifacts" / "iris"
    scratch = fresh_dir("build-time-naive-out")
    host, lam = requirements(artifact, ()), requirements(artifact, ("lambda",))
    naive_seconds(host, scratch / "warmup", lambda_target=False)  # fills pip's cache
    naive_seconds(lam, scratch / "warmup", lambda_target=True)
    return {
        "local": [naive_seconds(host, scratch / "h", lambda_target=False) for _ in range(runs)],
        "aws": [naive_seconds(lam, scratch / "l", lambda_target=True) for _ in range(runs)],
    }


def rows_for(provider: str, t: dict[str, list[float]], naive: list[float]) -> list[dict]:
    base = f"naive pip install --target ({'python3.12 x86_64' if provider == 'aws' else 'host'})"
    model_only = summarize(t["model_only"])["median"]
    return [
        row(f"{provider}: cold build (empty cache)", "s", t["cold"], naive, baseline_name=base),
        row(f"{provider}: warm build (nothing changed)", "s", t["warm"], naive,
            baseline_name=base),
        row(f"{provider}: model-only rebuild", "s", t["model_only"], naive, baseline_name=base,
            target="< 2 s absolute", absolute_met=model_only < 2.0),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="build-time benchmark")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=2)
    args = parser.parse_args(argv)
    naive = measure_naive(max(2, args.cold_runs))
    rows: list[dict[str, Any]] = []
    for provider in ("local", "aws"):
        times = measure_target(provider, cold_runs=args.cold_runs, runs=args.runs)
        rows += rows_for(provider, times, naive[provider])
    params = {
        "runs": args.runs,
        "cold_runs": args.cold_runs,
        "lambda_pip": LAMBDA_PIP,
        "note": "uv's and pip's download caches are warm; SLML_CACHE_DIR is emptied",
    }
    return write_result("build_time", rows, params)


if __name__ == "__main__":
    print(main())
