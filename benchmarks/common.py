"""What every benchmark shares: statistics, machine info, the JSON result files, and a
temporary copy of the iris example project under ``benchmarks/.work/`` (gitignored).

A result file ``benchmarks/results/<name>.json`` holds ``{"name", "timestamp",
"machine", "params", "rows": [...]}``; each row pairs an slml figure with a baseline
measured in the same run: ``{"metric", "unit", "slml", "baseline", "baseline_name",
"ratio", "target", "met", ...}`` where ``slml``/``baseline`` are summaries
(``median``, ``p10``, ``p90``, ``n``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.loadgen import percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / ".work"
EXAMPLE = ROOT / "examples" / "iris"
PYTHON = Path(sys.executable)
SLML = PYTHON.with_name("slml")
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median and spread (p10/p90, min/max) of repeated measurements."""
    vals = [float(v) for v in values]
    return {
        "median": percentile(vals, 50),
        "p10": percentile(vals, 10),
        "p90": percentile(vals, 90),
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }


def machine_info() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "load_avg_at_start": load,
    }


def row(
    metric: str,
    unit: str,
    slml: Sequence[float],
    baseline: Sequence[float],
    *,
    baseline_name: str,
    target: str | None = None,
    higher_is_better: bool = False,
    limit: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A result row: both summaries and the ratio of their medians (slml / baseline).
    ``limit`` with ``higher_is_better`` says whether the ratio meets the target."""
    s, b = summarize(slml), summarize(baseline)
    ratio = s["median"] / b["median"] if b["median"] else float("nan")
    met = None
    if limit is not None:
        met = ratio >= limit if higher_is_better else ratio <= limit
    return {
        "metric": metric,
        "unit": unit,
        "slml": s,
        "baseline": b,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "target": target,
        "met": met,
        **extra,
    }


def write_result(name: str, rows: list[dict[str, Any]], params: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "params": params,
        "rows": rows,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
    return path


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fresh_dir(name: str) -> Path:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def env_with(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("SLML_MODEL_DIR", None)
    return env


def train(project: Path, *, version: str = "1", onnx: bool = False, max_iter: int = 200) -> Path:
    """Train the iris example with its own train.py into ``project/artifacts/iris``."""
    out = project / "artifacts" / "iris"
    cmd = [str(PYTHON), str(EXAMPLE / "train.py"), "--out", str(out), "--version", version,
           "--max-iter", str(max_iter)]  # fmt: skip
    if onnx:
        cmd.append("--onnx")
    subprocess.run(cmd, check=True, capture_output=True, cwd=project)
    return out


def iris_project(name: str, *, onnx: bool = False) -> Path:
    """A fresh copy of examples/iris (slml.yaml) with a trained artifact."""
    project = fresh_dir(name)
    shutil.copy(EXAMPLE / "slml.yaml", project / "slml.yaml")
    train(project, onnx=onnx)
    return project


def slml_cli(
    args: Sequence[str], *, project: Path, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the ``slml`` console script in ``project``; raises with its stderr on failure."""
    proc = subprocess.run(
        [str(SLML), *args], cwd=project, env=env or env_with(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"slml {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
