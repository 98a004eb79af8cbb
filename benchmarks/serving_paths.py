"""The serving path itself, one run, ratios in the same run (``hey``, loopback):

1. iris, 1 row per request, concurrency 1/8/32: ``python -m slml.runtime.serve`` of this
   checkout against the same command from an earlier revision (``--previous REV``,
   extracted with ``git archive``; default the commit before issue 14's serving work),
   the hand-written Starlette app (benchmarks/baseline_app.py) and the trivial endpoint
   (hey's own ceiling). One worker each, every validation and log line on.
2. micro-batching: a 300-tree random forest (predict dominates), 1 row per request at
   concurrency 32, ``SLML_BATCH_MAX_SIZE`` unset vs set (``--batch-size``, default 64;
   ``--batch-latency-ms`` 5).

The servers run from this environment (not a deployed bundle): the comparison is of
the runtime's code, with the same interpreter and packages for all. Every server is
stopped at the end. Writes benchmarks/results/serving_paths.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
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
    write_result,
)
from benchmarks.hey import ensure_hey, run_hey
from benchmarks.procs import Server, free_port, start_server, stop_group

PREVIOUS = "18011f6"  # main before the plain-ASGI runtime (issue 14, serving path)
BODY = json.dumps({"instances": [IRIS_ROW]})
CONCURRENCY = (1, 8, 32)


def previous_tree(rev: str) -> Path:
    """``slml/`` of ``rev`` under benchmarks/.work/previous-<rev>/ (extracted once)."""
    dest = WORK / f"previous-{rev}"
    if not (dest / "slml" / "runtime" / "app.py").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", rev, "slml"], cwd=ROOT, check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def serve(model: Path, log: Path, *, code: Path = ROOT, **env: str) -> Server:
    port = free_port()
    cmd = [str(PYTHON), "-m", "slml.runtime.serve", "--model", str(model), "--port", str(port)]
    return start_server(cmd, url=f"http://127.0.0.1:{port}", log=log, cwd=code,
                        env=env_with(PYTHONPATH=str(code), **env))  # fmt: skip


def script(name: str, args: list[str], log: Path) -> Server:
    port = free_port()
    cmd = [str(PYTHON), str(ROOT / "benchmarks" / name), *args, "--port", str(port)]
    return start_server(cmd, url=f"http://127.0.0.1:{port}", log=log, env=env_with())


def forest_artifact() -> Path:
    """A 300-tree random forest on iris, saved with slml (signature from a sample)."""
    out = WORK / "forest" / "artifact"
    done = out.parent / ".saved"
    if not done.is_file():
        shutil.rmtree(out, ignore_errors=True)
        code = (
            "import sys\n"
            "from sklearn.datasets import load_iris\n"
            "from sklearn.ensemble import RandomForestClassifier\n"
            "from slml import save_model\n"
            "X, y = load_iris(return_X_y=True)\n"
            "m = RandomForestClassifier(n_estimators=300, random_state=0).fit(X, y)\n"
            "save_model(m, sys.argv[1], sample_input=X[:3], name='forest')\n"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(PYTHON), "-c", code, str(out)], check=True, cwd=ROOT,
                       env=env_with(PYTHONPATH=str(ROOT)))  # fmt: skip
        done.touch()
    return out


def level(url: str, concurrency: int, requests: int) -> dict[str, Any]:
    run_hey(url, BODY, concurrency=concurrency, requests=max(300, concurrency * 20))  # warm-up
    result = run_hey(url, BODY, concurrency=concurrency, requests=requests)
    if result["failures"]:
        raise RuntimeError(f"{url}: {result['failures']} failed: {result['statuses']}")
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    ensure_hey()
    logs = WORK / "serving_paths"
    iris = iris_project("serving-paths") / "artifacts" / "iris"
    model_file = iris / "model" / "model.joblib"
    forest = forest_artifact()
    raw: dict[str, Any] = {"paths": {}, "batching": {}}
    with ExitStack() as stack:
        servers = {
            "slml": serve(iris, logs / "slml.log"),
            "previous": serve(iris, logs / "previous.log", code=previous_tree(args.previous)),
            "hand-written": script("baseline_app.py", ["--model", str(model_file)],
                                   logs / "baseline.log"),
            "trivial": script("trivial_server.py", [], logs / "trivial.log"),
        }
        for server in servers.values():
            stack.callback(stop_group, server.proc)
        for c in CONCURRENCY:
            for rep in range(args.reps):
                names = list(servers) if rep % 2 == 0 else list(servers)[::-1]
                for name in names:
                    result = level(f"{servers[name].url}/predict", c, args.requests)
                    raw["paths"].setdefault(name, {}).setdefault(str(c), []).append(result)
    batch_env = {"SLML_BATCH_MAX_SIZE": str(args.batch_size),
                 "SLML_BATCH_MAX_LATENCY_MS": str(args.batch_latency_ms)}  # fmt: skip
    for _ in range(args.reps):
        for name, env in (("unbatched", {}), ("batched", batch_env)):
            with ExitStack() as stack:
                server = serve(forest, logs / f"forest-{name}.log", **env)
                stack.callback(stop_group, server.proc)
                result = level(f"{server.url}/predict", 32, args.forest_requests)
                raw["batching"].setdefault(name, []).append(result)
    return raw


def _rps(runs: list[dict[str, Any]]) -> list[float]:
    return [r["throughput_rps"] for r in runs]


def _q(runs: list[dict[str, Any]], q: str) -> list[float]:
    return [r["latency_ms"][q] for r in runs]


def rows(raw: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    paths = raw["paths"]
    for c in map(str, CONCURRENCY):
        for peer, label in (("previous", "slml before (same run)"),
                            ("hand-written", "hand-written Starlette + uvicorn"),
                            ("trivial", "trivial endpoint (hey's ceiling)")):  # fmt: skip
            limit = 1.0 if (peer, c) == ("hand-written", "8") else None
            target = {"target": "≥ 1.0x", "limit": limit} if limit else {}
            out.append(row(f"iris throughput, concurrency {c}", "req/s", _rps(paths["slml"][c]),
                           _rps(paths[peer][c]), baseline_name=label, higher_is_better=True,
                           **target))  # fmt: skip
        for q in ("p50", "p99"):
            out.append(row(f"iris latency {q}, concurrency {c}", "ms", _q(paths["slml"][c], q),
                           _q(paths["hand-written"][c], q),
                           baseline_name="hand-written Starlette + uvicorn"))  # fmt: skip
    b = raw["batching"]
    out.append(row("forest (300 trees) throughput, concurrency 32, batching on", "req/s",
                   _rps(b["batched"]), _rps(b["unbatched"]), baseline_name="batching off",
                   higher_is_better=True, target="≥ 2x", limit=2.0))  # fmt: skip
    for q in ("p50", "p99"):
        out.append(row(f"forest latency {q}, concurrency 32, batching on", "ms",
                       _q(b["batched"], q), _q(b["unbatched"], q),
                       baseline_name="batching off"))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="serving-path benchmark")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--forest-requests", type=int, default=1000)
    parser.add_argument("--previous", default=PREVIOUS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batch-latency-ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    raw = measure(args)
    params = {**vars(args), "body": BODY, "python": sys.version.split()[0], "raw": raw}
    return write_result("serving_paths", rows(raw), params)


if __name__ == "__main__":
    print(main())
