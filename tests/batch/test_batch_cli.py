"""`slml batch` end to end through the console script: the model's own environment as
workers, every row validated as the endpoint does, failures in errors.jsonl, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.batch.conftest import SLML, batch
from tests.conftest import IRIS_COLUMNS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def read_output(out: Path) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(sorted(out.glob("part-*.parquet")))
    return np.asarray(table.column("row")), np.asarray(table.column("prediction"))


def valid_rows(path: Path, bad: set[int]) -> tuple[list[int], np.ndarray]:
    lines = path.read_text().splitlines()[1:]
    keep = [i for i in range(len(lines)) if i not in bad]
    return keep, np.array([[float(v) for v in lines[i].split(",")] for i in keep])


def test_predictions_match_in_memory_predict_and_errors_name_the_rows(
    tmp_path: Path, table: tuple[Path, set[int]], iris_artifact: Path, iris_model
) -> None:
    path, bad = table
    done = batch(str(path), str(tmp_path / "out"), "--model", str(iris_artifact),
                 cwd=tmp_path, check=1)  # some rows failed: exit 1
    assert "100,000 rows: 99,950 predictions, 50 failed" in done.stdout, done.stdout

    rows, predictions = read_output(tmp_path / "out")
    keep, values = valid_rows(path, bad)
    assert rows.tolist() == keep
    assert predictions.tolist() == iris_model.predict(values).tolist()

    errors = [json.loads(line) for line in (tmp_path / "out/errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == sorted(bad)
    codes = {e["code"] for e in errors}
    assert codes <= {"invalid_input", "unreadable_row"}, codes
    assert any("fields, expected 4" in e["message"] for e in errors)
    assert any("not a number" in e["message"] for e in errors)
    summary = json.loads((tmp_path / "out/_SUCCESS").read_text())
    assert (summary["rows"], summary["errors"], summary["partitions"]) == (100_000, 50, 10)


def test_clean_and_broken_partitions_side_by_side_score_alike(
    tmp_path: Path, table: tuple[Path, set[int]], iris_artifact: Path, iris_model
) -> None:
    """1,000-row partitions: every other one is clean and reaches the workers parsed
    (slml.batch.arrays), the others go as text: the output is the same as predict's."""
    path, bad = table
    done = batch(str(path), str(tmp_path / "out"), "--model", str(iris_artifact),
                 "--chunk-rows", "1000", "--workers", "2", cwd=tmp_path, check=1)
    assert "100,000 rows: 99,950 predictions, 50 failed (100 partitions" in done.stdout
    rows, predictions = read_output(tmp_path / "out")
    keep, values = valid_rows(path, bad)
    assert rows.tolist() == keep
    assert predictions.tolist() == iris_model.predict(values).tolist()


def test_killed_half_way_the_rerun_skips_written_partitions(
    tmp_path: Path, table: tuple[Path, set[int]], iris_artifact: Path
) -> None:
    path, _ = table
    out = tmp_path / "out"
    args = [str(path), str(out), "--model", str(iris_artifact), "--chunk-rows", "2000",
            "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen([SLML, "batch", *args], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((out / "_done").glob("*.json"))) < 5:
        assert proc.poll() is None and time.monotonic() < deadline, "no partitions written"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = {p.name: p.stat().st_mtime_ns for p in (out / "_done").glob("*.json")}
    assert 5 <= len(written) < 50 and not (out / "_SUCCESS").exists()

    done = batch(*args, "--json", cwd=tmp_path, check=1)
    summary = json.loads(done.stdout)
    assert summary["skipped"] >= len(written) and summary["partitions"] == 50
    assert (summary["rows"], summary["predictions"], summary["errors"]) == (100_000, 99_950, 50)
    again = {p.name: p.stat().st_mtime_ns for p in (out / "_done").glob("*.json")}
    assert all(again[name] == stamp for name, stamp in written.items())  # not recomputed
    rows, _ = read_output(out)
    assert len(rows) == 99_950 and len(set(rows.tolist())) == 99_950


def test_more_failed_rows_than_allowed_stop_the_run_after_the_partition_that_passed_it(
    tmp_path: Path, table: tuple[Path, set[int]], iris_artifact: Path
) -> None:
    """One failed row in each 2,000-row partition: the run stops once the eleventh is
    written, though the parent read further ahead; a rerun would go on from there."""
    path, _ = table
    out = tmp_path / "out"
    done = batch(str(path), str(out), "--model", str(iris_artifact), "--chunk-rows", "2000",
                 "--max-errors", "10", "--json", cwd=tmp_path, check=2)
    assert "stopped: more than 10 rows failed" in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["partitions"], summary["errors"], summary["rows"]) == (11, 11, 22_000)
    assert len(list((out / "_done").glob("*.json"))) == 11 and not (out / "_SUCCESS").exists()
    assert len((out / "errors.jsonl").read_text().splitlines()) == 11


def test_ray_engine_gives_the_same_output(
    tmp_path: Path, table: tuple[Path, set[int]], iris_artifact: Path
) -> None:
    path, _ = table
    common = [str(path), "--model", str(iris_artifact), "--workers", "2"]
    batch(common[0], str(tmp_path / "local"), *common[1:], cwd=tmp_path, check=1)
    batch(common[0], str(tmp_path / "ray"), *common[1:], "--engine", "ray", cwd=tmp_path,
          check=1)
    for name in ("rows", "predictions"):
        local, ray = (read_output(tmp_path / d)[name == "predictions"] for d in ("local", "ray"))
        assert local.tolist() == ray.tolist()
    assert (tmp_path / "local/errors.jsonl").read_text() == (
        tmp_path / "ray/errors.jsonl").read_text()


@pytest.mark.timeout(900)  # a JVM start: about a minute quiet, several under load
def test_spark_engine_gives_the_same_output(
    tmp_path: Path, table: tuple[Path, set[int]], iris_artifact: Path
) -> None:
    import shutil

    if shutil.which("java") is None and os.environ.get("CI") != "true":
        pytest.skip("no Java runtime for Spark (make engine installs one)")
    path, _ = table
    common = [str(path), "--model", str(iris_artifact), "--workers", "2", "--chunk-rows",
              "25000"]  # fmt: skip
    batch(common[0], str(tmp_path / "local"), *common[1:], cwd=tmp_path, check=1)
    done = batch(common[0], str(tmp_path / "spark"), *common[1:], "--engine", "spark",
                 "--json", cwd=tmp_path, check=1)
    assert json.loads(done.stdout)["engine"] == "spark"
    for name in ("rows", "predictions"):
        local, spark = (read_output(tmp_path / d)[name == "predictions"]
                        for d in ("local", "spark"))
        assert local.tolist() == spark.tolist()
    assert (tmp_path / "local/errors.jsonl").read_text() == (
        tmp_path / "spark/errors.jsonl").read_text()


def test_formats_and_pass_through_columns(tmp_path: Path, iris_artifact: Path, iris_model) -> None:
    rows = [{"id": f"r{i}", **dict(zip(IRIS_COLUMNS, (5.1, 3.5, 1.4, 0.2 + i / 10),
                                       strict=True))} for i in range(5)]
    rows[2]["petal_width"] = "wide"  # a JSON string where a number belongs
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact), "--keep", "id",
          "--format", "jsonl", cwd=tmp_path, check=1)
    got = [json.loads(x) for x in (tmp_path / "out/part-00000.jsonl").read_text().splitlines()]
    assert [g["id"] for g in got] == ["r0", "r1", "r3", "r4"]
    values = np.array([[r[c] for c in IRIS_COLUMNS] for r in rows if r["id"] != "r2"])
    assert [g["prediction"] for g in got] == iris_model.predict(values).tolist()
    errors = (tmp_path / "out/errors.jsonl").read_text().splitlines()
    assert [json.loads(e)["row"] for e in errors] == [2, 5]

    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "in.parquet")
    batch(str(tmp_path / "in.parquet"), str(tmp_path / "pq"), "--model", str(iris_artifact),
          "--format", "csv", cwd=tmp_path, check=0)
    assert (tmp_path / "pq/part-00000.csv").read_text().splitlines()[0] == '"row","prediction"'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "dask"], "--engine 'dask' is not one of local, ray, spark"),
        (["--chunk-rows", "0"], "--chunk-rows must be at least 1"),
        (["--keep", "nope"], "--keep nope: no such column"),
        (["--format", "xlsx"], "--format 'xlsx' is not one of parquet, csv, jsonl"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path: Path, iris_artifact: Path, args: list[str],
                                      message: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(",".join(IRIS_COLUMNS) + "\n5.1,3.5,1.4,0.2\n")
    done = batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact), *args,
                 cwd=tmp_path, check=2)
    assert message in done.stderr and "Traceback" not in done.stderr


def test_missing_columns_other_outputs_and_changed_jobs_are_refused(
    tmp_path: Path, iris_artifact: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n")
    done = batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact), cwd=tmp_path,
                 check=2)
    assert "the input has no column 'sepal_length'" in done.stderr

    src.write_text(",".join(IRIS_COLUMNS) + "\n5.1,3.5,1.4,0.2\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    done = batch(str(src), str(tmp_path / "busy"), "--model", str(iris_artifact), cwd=tmp_path,
                 check=2)
    assert "is not the output of an slml batch job" in done.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"

    batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact), cwd=tmp_path, check=0)
    done = batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact),
                 "--chunk-rows", "7", cwd=tmp_path, check=2)
    assert "different batch job (chunk_rows changed)" in done.stderr
    assert "--overwrite" in done.stderr
    batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact), "--chunk-rows", "7",
          "--overwrite", cwd=tmp_path, check=0)


def test_quoted_csv_fields_keep_rows_and_pass_through(tmp_path: Path, iris_artifact: Path,
                                                      iris_model) -> None:
    src = tmp_path / "in.csv"
    ids = ['plain', 'has, comma', 'has\nnewline', 'has "quotes"']
    lines = ["id," + ",".join(IRIS_COLUMNS)]
    for i, ident in enumerate(ids):
        quoted = '"' + ident.replace('"', '""') + '"' if any(c in ident for c in ',\n"') else ident
        lines.append(f"{quoted},5.1,3.5,1.4,{0.2 + i}")
    lines.append("short,1.0")  # too few fields: its own error, the rest still scored
    src.write_text("\n".join(lines) + "\n")
    batch(str(src), str(tmp_path / "out"), "--model", str(iris_artifact), "--keep", "id",
          "--format", "jsonl", "--chunk-rows", "2", cwd=tmp_path, check=1)
    got = [json.loads(x) for p in sorted((tmp_path / "out").glob("part-*.jsonl"))
           for x in p.read_text().splitlines()]  # fmt: skip
    assert [(g["row"], g["id"]) for g in got] == list(enumerate(ids))
    values = np.array([[5.1, 3.5, 1.4, 0.2 + i] for i in range(len(ids))])
    assert [g["prediction"] for g in got] == iris_model.predict(values).tolist()
    (error,) = [json.loads(x) for x in (tmp_path / "out/errors.jsonl").read_text().splitlines()]
    assert (error["row"], error["code"]) == (4, "unreadable_row")


def test_object_store_urls_without_their_filesystem_say_what_to_install(
    tmp_path: Path, iris_artifact: Path
) -> None:
    done = batch("nosuch://bucket/rows.csv", str(tmp_path / "out"), "--model",
                 str(iris_artifact), cwd=tmp_path, check=2)
    assert "cannot open nosuch://bucket/rows.csv" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
