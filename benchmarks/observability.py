"""Latency cost of runtime metrics and of captured traffic at concurrency 8.

Three servers of the same iris artifact, each ``python -m slml.runtime.serve`` in this
environment, one at a time, alternating order over ``--reps`` repetitions:

- base: the runtime as it was before metrics (``--base-ref``, default the parent of
  the first metrics commit, exported with ``git archive``): no /metrics, no capture;
- metrics: this tree's runtime (metrics are always on);
- capture: this tree's runtime with ``SLML_CAPTURE`` sampling every request to a JSONL
  file sink (the most expensive setting).

``hey`` sends ``--requests`` POSTs of one row after a warm-up; p50/p99 and throughput
per run go to benchmarks/results/observability.json. Loopback only; every server is
stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import IRIS_ROW, PYTHON, ROOT, env_with, iris_project, write_result
from benchmarks.hey import ensure_hey, run_hey
from benchmarks.procs import free_port, start_server

BODY = json.dumps({"instances": [IRIS_ROW]})


def export_base(ref: str, dest: Path) -> Path:
    """``slml/`` of ``ref`` under ``dest`` (to import the old runtime from)."""
    archive = subprocess.run(["git", "archive", ref, "slml"], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def serve(model: Path, log: Path, *, pythonpath: Path | None, capture: Path | None) -> Any:
    port = free_port()
    extra: dict[str, str] = {}
    if pythonpath is not None:
        extra["PYTHONPATH"] = str(pythonpath)
    if capture is not None:
        extra["SLML_CAPTURE"] = json.dumps({"sample": 1.0, "sink": str(capture)})
    cmd = [str(PYTHON), "-m", "slml.runtime.serve", "--model", str(model), "--port", str(port)]
    cwd = pythonpath or ROOT
    return start_server(cmd, url=f"http://127.0.0.1:{port}", log=log, env=env_with(**extra),
                        cwd=cwd)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--base-ref", default="18011f6")
    args = parser.parse_args(argv)
    ensure_hey()
    project = iris_project("observability")
    model = project / "artifacts" / "iris"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="slml-obs-") as tmp:
        base = export_base(args.base_ref, Path(tmp))
        variants = {"base": (base, None), "metrics": (None, None),
                    "capture": (None, Path(tmp) / "capture")}  # fmt: skip
        for rep in range(args.reps):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for name in order:
                path, capture = variants[name]
                server = serve(model, project / f"{name}.log", pythonpath=path, capture=capture)
                try:
                    url = server.url + "/predict"
                    run_hey(url, BODY, concurrency=8, requests=300)  # warm-up
                    result = run_hey(url, BODY, concurrency=8, requests=args.requests)
                finally:
                    server.stop()
                rows.append({"variant": name, "rep": rep, **result})
                lat = result["latency_ms"]
                print(f"{name:8s} rep {rep}: {result['throughput_rps']:.0f} rps, "
                      f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, "
                      f"failures {result['failures']}", file=sys.stderr)  # fmt: skip
    path = write_result("observability", rows, vars(args))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
