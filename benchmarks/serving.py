"""Warm serving, one run, every server on the same iris model file, loaded by a native
load generator whose own headroom is shown in the same run:

- slml: the iris example deployed with ``slml deploy`` (local provider: the real
  bundle in its own environment, every validation and log line on);
- hand-written: benchmarks/baseline_app.py, a minimal Starlette app under plain uvicorn
  (h11, asyncio), and the same app under ``uvicorn[standard]`` (httptools, uvloop: what
  slml's bundles run on, in a virtualenv of its own);
- mlflow: ``mlflow models serve`` (``--env-manager local``, 1 worker);
- bentoml: ``bentoml serve`` of a one-class service (1 worker);
  (both installed by benchmarks/anchors.py into their own virtualenvs, pinned);
- trivial: benchmarks/trivial_server.py, a fixed answer with no framework: the rate
  ``hey`` reaches there is a lower bound of what the client can generate here.

The client is ``hey`` (benchmarks/hey.py; apt-get installs it when missing). Every run
records hey's CPU seconds per second (``client_cores``). Each level (concurrency 1, 8,
32) is a warm-up then ``--requests`` requests; repetitions alternate the server order.
Throughput and p50/p99 latency per level, and the RSS of each server's process tree
after the load. Loopback only; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks import anchors
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
from benchmarks.hey import ensure_hey, run_hey
from benchmarks.procs import Server, free_port, kill_group, memory_kb, start_server, stop_group

BODY = json.dumps({"instances": [IRIS_ROW]})
CONCURRENCY = (1, 8, 32)
PEERS = {
    "hand-written": "hand-written Starlette + uvicorn (1 worker)",
    "hand-written-standard": "hand-written Starlette + uvicorn[standard] (1 worker)",
    "mlflow": f"mlflow models serve ({anchors.PINS['mlflow'][0]}, 1 worker)",
    "bentoml": f"bentoml serve ({anchors.PINS['bentoml'][0]}, 1 worker)",
}
TARGETS = {("hand-written", 8): 1.0, ("mlflow", 8): 2.5}  # issue 14's goals at c=8


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


def start_script(script: str, args: list[str], log: Path) -> Server:
    port = free_port()
    cmd = [str(PYTHON), str(ROOT / "benchmarks" / script), *args, "--port", str(port)]
    return start_server(cmd, url=f"http://127.0.0.1:{port}", log=log, env=env_with())


def tree_rss_kb(root: int) -> int:
    """The summed VmRSS (kB) of ``root`` and every process descended from it or in its
    process group: servers that fork workers count whole (BentoML starts its worker in
    a session of its own)."""
    parents: dict[int, tuple[int, int]] = {}  # pid -> (ppid, pgid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = (int(fields[1]), int(fields[2]))
            except (OSError, ValueError, IndexError):
                continue
    members = {root} | {pid for pid, (_, pgid) in parents.items() if pgid == root}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in parents.items() if ppid in members} - members
        members |= more
        grew = bool(more)
    return sum(memory_kb(pid) or 0 for pid in members)


Target = tuple[str, str, int]  # (url of the predict route, body, server pid)


def start_all(stack: ExitStack) -> dict[str, Target]:
    logs = WORK / "serving"
    project = iris_project("serving")
    model_file = project / "artifacts/iris/model/model.joblib"
    url, pid = deploy_slml(project, WORK / "cache-serving", stack)
    targets: dict[str, Target] = {"slml": (f"{url}/predict", BODY, pid)}
    base = start_script("baseline_app.py", ["--model", str(model_file)], logs / "baseline.log")
    stack.callback(stop_group, base.proc)
    targets["hand-written"] = (f"{base.url}/predict", BODY, base.pid)
    starters: dict[str, Callable[..., anchors.Anchor]] = {
        "hand-written-standard": anchors.start_standard,
        "mlflow": anchors.start_mlflow, "bentoml": anchors.start_bentoml,
    }  # fmt: skip
    for name, start in starters.items():
        peer = start(model_file, IRIS_ROW, logs / f"{name}.log")
        stack.callback(stop_group, peer.server.proc)
        targets[name] = (peer.server.url + peer.path, peer.body, peer.server.pid)
    trivial = start_script("trivial_server.py", [], logs / "trivial.log")
    stack.callback(stop_group, trivial.proc)
    targets["trivial"] = (f"{trivial.url}/predict", BODY, trivial.pid)
    return targets


def measure(reps: int, requests: int) -> tuple[dict, dict]:
    ensure_hey()
    for name in anchors.PINS:  # install before any server starts: not timed
        anchors.ensure_venv(name)
    with ExitStack() as stack:
        targets = start_all(stack)
        names = list(targets)
        results: dict[str, dict[int, list[dict[str, Any]]]] = {
            n: {c: [] for c in CONCURRENCY} for n in names
        }
        for c in CONCURRENCY:
            for rep in range(reps):
                for name in names if rep % 2 == 0 else names[::-1]:
                    url, body, _ = targets[name]
                    run_hey(url, body, concurrency=c, requests=max(300, c * 20))  # warm-up
                    result = run_hey(url, body, concurrency=c, requests=requests)
                    if result["failures"]:
                        raise RuntimeError(f"{name}: {result['failures']} failed requests: "
                                           f"{result['statuses']}")  # fmt: skip
                    results[name][c].append(result)
        memory = {name: tree_rss_kb(pid) for name, (_, _, pid) in targets.items()}
    return results, memory


def _values(runs: list[dict[str, Any]], key: str, q: str | None = None) -> list[float]:
    return [r[key][q] if q else r[key] for r in runs]


def rows(results: dict, memory: dict) -> list[dict[str, Any]]:
    out = []
    s = results["slml"]
    for c in CONCURRENCY:
        for peer, label in PEERS.items():
            p = results[peer]
            limit = TARGETS.get((peer, c))
            target = {"target": f"≥ {limit}x", "limit": limit} if limit else {}
            out.append(row(f"throughput, concurrency {c}", "req/s",
                           _values(s[c], "throughput_rps"), _values(p[c], "throughput_rps"),
                           baseline_name=label, higher_is_better=True, **target))  # fmt: skip
            for q in ("p50", "p99"):
                out.append(row(f"latency {q}, concurrency {c}", "ms",
                               _values(s[c], "latency_ms", q), _values(p[c], "latency_ms", q),
                               baseline_name=label))  # fmt: skip
        trivial = results["trivial"][c]
        out.append(
            row(
                f"hey's headroom, concurrency {c}: slml's rate vs hey against a trivial endpoint",
                "req/s",
                _values(s[c], "throughput_rps"),
                _values(trivial, "throughput_rps"),
                baseline_name="trivial endpoint (benchmarks/trivial_server.py)",
            )
        )
        out.append(row(f"hey's own CPU while loading slml vs the trivial endpoint, "
                       f"concurrency {c}", "cores", _values(s[c], "client_cores"),
                       _values(trivial, "client_cores"),
                       baseline_name="hey against the trivial endpoint"))  # fmt: skip
    for peer, label in PEERS.items():
        out.append(row("RSS of the server's processes after the load", "MB",
                       [memory["slml"] / 1024], [memory[peer] / 1024],
                       baseline_name=label))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="warm-serving benchmark")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    results, memory = measure(args.reps, args.requests)
    params = {**vars(args), "body": BODY, "python": sys.version.split()[0],
              "load_generator": "hey (Debian package)", "rss_kb": memory,
              "raw": results}  # fmt: skip
    return write_result("serving", rows(results, memory), params)


if __name__ == "__main__":
    print(main())
