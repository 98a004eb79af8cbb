"""The Cloud Run Job task (`python -m slml.runtime.batch_job`) as a process: each task
scores only its share of the partitions, and the shares add up to the whole file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slml.runtime.batch import score
from slml.runtime.loader import LoadedModel, load
from tests.batch.conftest import write_table

ROOT = Path(__file__).resolve().parents[2]


def run_task(src: Path, out: Path, model: Path, index: int, count: int
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOUD_RUN_TASK_INDEX": str(index), "CLOUD_RUN_TASK_COUNT": str(count)}
    return subprocess.run(
        [sys.executable, "-m", "slml.runtime.batch_job", "--input", str(src), "--output",
         str(out), "--model", str(model), "--chunk-rows", "1000"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_each_task_scores_its_shard_and_the_shards_add_up(
    tmp_path: Path, iris_artifact: Path, iris_model
) -> None:
    src = tmp_path / "in.csv"
    bad = write_table(src, rows=10_000)  # 10 partitions of 1,000 rows, 5 broken rows
    out = tmp_path / "out"
    first = run_task(src, out, iris_artifact, 1, 3)
    assert first.returncode == 1, first.stderr  # its share holds broken rows
    assert sorted(p.stem for p in (out / "_done").glob("*.json")) == [
        "part-00001", "part-00004", "part-00007"]
    assert json.loads(first.stdout.splitlines()[-1])["severity"] == "INFO"
    for index in (0, 2):
        assert run_task(src, out, iris_artifact, index, 3).returncode == 1
    rows, predictions = [], []
    for part in sorted(out.glob("part-*.jsonl")):
        for line in part.read_text().splitlines():
            record = json.loads(line)
            rows.append(record["row"])
            predictions.append(record["prediction"])
    lines = src.read_text().splitlines()[1:]
    keep = [i for i in range(len(lines)) if i not in bad]
    values = np.array([[float(v) for v in lines[i].split(",")] for i in keep])
    assert rows == keep and predictions == iris_model.predict(values).tolist()
    errors = [json.loads(x)["row"] for p in sorted((out / "errors").glob("*.jsonl"))
              for x in p.read_text().splitlines()]  # fmt: skip
    assert errors == sorted(bad)
    again = run_task(src, out, iris_artifact, 1, 3)  # a retried task skips what is done
    assert json.loads(again.stdout.splitlines()[-1])["predictions"] == 0


def test_a_task_without_its_input_or_with_a_bad_share_exits_2(
    tmp_path: Path, iris_artifact: Path
) -> None:
    missing = run_task(tmp_path / "nope.csv", tmp_path / "out", iris_artifact, 0, 1)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    src = tmp_path / "in.csv"
    write_table(src, rows=10)
    wrong = run_task(src, tmp_path / "out", iris_artifact, 3, 3)
    assert wrong.returncode == 2 and "task 3 of 3" in wrong.stderr


def test_score_isolates_rows_the_model_fails_on(iris_artifact: Path) -> None:
    model = load(iris_artifact)

    def picky(batch):  # fails whenever the batch holds a row starting with 6.0
        if any(row[0] == 6.0 for row in batch.rows):
            raise ValueError("cannot score 6.0")
        return [0] * len(batch.rows)

    flaky = LoadedModel(model.manifest, model.path, picky, model.spec)
    scored = score(flaky, [[5.0, 1, 1, 1], [6.0, 1, 1, 1], ["x", 1, 1, 1], [7.0, 1, 1, 1]])
    assert scored.ok == [0, 3] and scored.predictions == [0, 0]
    assert [(i, code) for i, code, _ in scored.errors] == [(1, "model_error"),
                                                          (2, "invalid_input")]
    assert "cannot score 6.0" in scored.errors[0][2]


@pytest.mark.parametrize("rows", [[], [[5.1, 3.5, 1.4, 0.2]]])
def test_score_of_an_empty_or_clean_partition(iris_artifact: Path, rows: list) -> None:
    scored = score(load(iris_artifact), rows)
    assert scored.ok == list(range(len(rows))) and not scored.errors


def test_a_jsonl_task_reports_lines_that_are_not_objects(tmp_path: Path, iris_artifact: Path
                                                          ) -> None:
    from tests.conftest import IRIS_COLUMNS

    row = dict(zip(IRIS_COLUMNS, (5.1, 3.5, 1.4, 0.2), strict=True))
    src = tmp_path / "in.jsonl"
    src.write_text(f"{json.dumps(row)}\n[1, 2]\n{{broken\n{json.dumps(row)}\n")
    done = run_task(src, tmp_path / "out", iris_artifact, 0, 1)
    assert done.returncode == 1, done.stderr
    errors = [json.loads(x) for x in (tmp_path / "out/errors/part-00000.jsonl").read_text()
              .splitlines()]  # fmt: skip
    assert [(e["row"], e["code"]) for e in errors] == [(1, "unreadable_row"),
                                                      (2, "unreadable_row")]
    assert len((tmp_path / "out/part-00000.jsonl").read_text().splitlines()) == 2
