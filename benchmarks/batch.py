"""Batch scoring: ``slml batch`` against the floor of one plain process, same file, same run.

The floor reads the whole CSV with pyarrow, calls ``predict`` once on the whole array and
writes the predictions as Parquet: no validation, no partitions, no resume, no error file.
``slml batch`` is run with one worker (one core), two workers, and on Ray (two actors).
Rows/s are rows over the wall time of the whole process (imports and start-up included,
for both), with Python's bytecode cache on for every process (a machine that sets
PYTHONDONTWRITEBYTECODE would otherwise recompile every imported module on every run,
which costs slml's larger import set more than the floor's). Peak memory is the summed
RSS of the process tree, sampled every 50 ms, for 1M and 5M rows: it should stay flat as
the input grows.

    python -m benchmarks.batch [--rows 1000000] [--big-rows 5000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import PYTHON, SLML, env_with, iris_project, row, write_result
from benchmarks.procs import memory_kb

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

FLOOR = """
import sys, joblib, numpy as np, pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
model = joblib.load(sys.argv[1])
table = pc.read_csv(sys.argv[2])
x = np.column_stack([table.column(c).to_numpy() for c in table.column_names])
pred = model.predict(x)
pq.write_table(pa.table({"row": np.arange(len(pred)), "prediction": pred}), sys.argv[3])
"""


def write_csv(path: Path, rows: int) -> Path:
    """``rows`` random iris-like rows (a header, 4 float columns), written in blocks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pc

    rng = np.random.default_rng(0)
    with pc.CSVWriter(path, pa.schema([(c, pa.float64()) for c in COLUMNS])) as writer:
        for start in range(0, rows, 500_000):
            n = min(500_000, rows - start)
            block = np.round(rng.uniform(0.1, 7.9, size=(n, 4)), 2)
            writer.write_table(pa.table({c: block[:, i] for i, c in enumerate(COLUMNS)}))
    return path


def tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and every descendant (from /proc), in KB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += memory_kb(current) or 0
        todo += children.get(current, [])
    return total


def run_measured(cmd: list[str], *, cwd: Path) -> tuple[float, int]:
    """(wall seconds, peak tree RSS in KB) of ``cmd``; raises if it fails."""
    env = env_with()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as an installed package has
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    sampler.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return wall, peak[0]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)

    project = iris_project("batch")
    model = project / "artifacts" / "iris"
    data = write_csv(project / "rows.csv", args.rows)
    walls: dict[str, list[float]] = {}
    peaks: dict[str, list[int]] = {}
    runs = {
        "floor": lambda out: [str(PYTHON), "-c", FLOOR, str(model / "model" / "model.joblib"),
                              str(data), str(out)],
        "local-1": lambda out: [str(SLML), "batch", str(data), str(out), "--model", str(model),
                                "--workers", "1", "--chunk-rows", "50000"],
        "local-2": lambda out: [str(SLML), "batch", str(data), str(out), "--model", str(model),
                                "--workers", "2", "--chunk-rows", "50000"],
        "ray-2": lambda out: [str(SLML), "batch", str(data), str(out), "--model", str(model),
                              "--workers", "2", "--chunk-rows", "50000", "--engine", "ray"],
    }  # fmt: skip
    # one untimed run of each first: builds the model's environment, warms the page cache
    for name, cmd in runs.items():
        run_measured(cmd(project / f"warm-{name}"), cwd=project)
    for i in range(args.repeat):
        for name, cmd in runs.items():
            wall, peak = run_measured(cmd(project / f"out-{name}-{i}"), cwd=project)
            walls.setdefault(name, []).append(wall)
            peaks.setdefault(name, []).append(peak)
            print(f"   {name}: {args.rows / wall:,.0f} rows/s, peak {peak / 1024:.0f} MB",
                  flush=True)

    big = write_csv(project / "rows-big.csv", args.big_rows)
    _, big_peak = run_measured([str(SLML), "batch", str(big), str(project / "out-big"),
                                "--model", str(model), "--workers", "2",
                                "--chunk-rows", "50000"], cwd=project)  # fmt: skip

    rate = {name: [args.rows / w for w in ws] for name, ws in walls.items()}
    rows = [
        row("rows/s, slml batch --engine local, 1 worker", "rows/s", rate["local-1"],
            rate["floor"], baseline_name="one process: read all, predict once, write",
            target=">= 0.7x", higher_is_better=True, limit=0.7),
        row("rows/s, slml batch --engine local, 2 workers", "rows/s", rate["local-2"],
            rate["floor"], baseline_name="one process: read all, predict once, write",
            target="> 1x", higher_is_better=True, limit=1.0),
        row("rows/s, slml batch --engine ray, 2 actors", "rows/s", rate["ray-2"],
            rate["floor"], baseline_name="one process: read all, predict once, write",
            higher_is_better=True),
        row(f"peak RSS, {args.big_rows:,} rows vs {args.rows:,} (2 workers)", "MB",
            [big_peak / 1024], [p / 1024 for p in peaks["local-2"]],
            baseline_name=f"the same at {args.rows:,} rows", target="<= 1.2x (bounded)",
            limit=1.2),
        row(f"peak RSS, floor at {args.rows:,} rows vs slml batch (2 workers)", "MB",
            [p / 1024 for p in peaks["local-2"]], [p / 1024 for p in peaks["floor"]],
            baseline_name="floor (holds the whole table)"),
    ]  # fmt: skip
    params = {"rows": args.rows, "big_rows": args.big_rows, "repeat": args.repeat,
              "chunk_rows": 50_000, "model": "iris LogisticRegression"}  # fmt: skip
    return write_result("batch", rows, params)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
