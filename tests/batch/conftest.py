"""A 100,000-row iris table with 50 rows that must fail, and a runner for `slml batch`."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IRIS_COLUMNS

SLML = str(Path(sys.executable).with_name("slml"))
ROWS = 100_000
# every 2,000th row is broken, in one of five ways the endpoint also refuses
BROKEN = ("abc,1.0,2.0,3.0", "1.0,2.0,3.0", "1.0,2.0,3.0,4.0,5.0", "1.0,,2.0,3.0",
          "1e400,1.0,2.0,3.0")  # fmt: skip


def write_table(path: Path, rows: int = ROWS) -> set[int]:
    """Write the CSV; return the row numbers that must fail."""
    rng = random.Random(7)
    bad: set[int] = set()
    lines = [",".join(IRIS_COLUMNS)]
    for i in range(rows):
        if i % 2_000 == 1_999:
            lines.append(BROKEN[len(bad) % len(BROKEN)])
            bad.add(i)
        else:
            lines.append(",".join(f"{rng.uniform(0.1, 7.9):.2f}" for _ in IRIS_COLUMNS))
    path.write_text("\n".join(lines) + "\n")
    return bad


@pytest.fixture(scope="session")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[int]]:
    path = tmp_path_factory.mktemp("batch") / "iris.csv"
    return path, write_table(path)


def batch(*args: str, cwd: Path, check: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([SLML, "batch", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)
    if check is not None:
        assert done.returncode == check, done.stdout + done.stderr
    return done


@pytest.fixture
def project(tmp_path: Path, iris_artifact: Path) -> Path:
    """A project directory: the iris example's slml.yaml and the iris artifact."""
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "examples" / "iris" / "slml.yaml", tmp_path / "slml.yaml")
    (tmp_path / "artifacts").mkdir()
    shutil.copytree(iris_artifact, tmp_path / "artifacts" / "iris")
    return tmp_path
