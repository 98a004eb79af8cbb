"""A worker answers float64 columns predicted in one call with the model's own array, as
bytes; the parent reads back exactly the JSON values the answer would have carried, so
every engine's output stays the same. A real worker process speaks the protocol."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.runtime import batch
from slml.runtime.batch import array_values
from slml.runtime.loader import jsonable, load

ARRAYS = {
    "int32": np.array([3, -1, 7], dtype=np.int32),
    "uint64": np.array([0, 2**63 + 5], dtype=np.uint64),
    "float with NaN and infinity": np.array([1.5, np.nan, -np.inf]),
    "float32": np.array([0.1, 1e-3], dtype=np.float32),
    "bool": np.array([True, False]),
    "labels": np.array(["setosa", "versicolor", "é"]),
    "probabilities (2-D)": np.array([[0.1, 0.9], [0.5, 0.5]], dtype=np.float32),
}


@pytest.mark.parametrize("array", ARRAYS.values(), ids=ARRAYS.keys())
def test_arrays_sent_as_bytes_read_back_as_their_json_values(array: Any) -> None:
    assert batch._plain_array(array, len(array))
    assert array_values(array.tobytes(), array.dtype.str, list(array.shape)) == jsonable(array)


@pytest.mark.parametrize("out", [np.array(["a", None], dtype=object), np.float64(1.0),
                                 [1, 2], np.array([1, 2, 3])])  # fmt: skip
def test_anything_else_is_answered_as_json(out: Any) -> None:
    assert not batch._plain_array(out, 2)


def frame(rows: np.ndarray, key: int = 3) -> dict[str, Any]:
    return {"id": key, "f64": np.ascontiguousarray(rows.T).tobytes(), "size": len(rows),
            "width": rows.shape[1]}  # fmt: skip


def test_the_model_answers_in_bytes_what_it_answers_in_json(_iris_artifact_master: Path,
                                                            iris_rows: list[list[float]]) -> None:
    model = load(_iris_artifact_master)
    job = frame(np.array(iris_rows * 50))
    head, data = batch._answer(model, job)
    assert head["array_bytes"] == len(data) and head["ok"] == len(iris_rows) * 50
    expected = batch.score_frame(model, job).predictions
    assert array_values(data, head["dtype"], head["shape"]) == expected


def test_the_worker_protocol_carries_an_array_after_its_line(_iris_artifact_master: Path,
                                                             iris_rows: list[list[float]]) -> None:
    rows = np.array(iris_rows)
    data = frame(rows).pop("f64")
    header = {"id": 9, "f64_bytes": len(data), "size": len(rows), "width": rows.shape[1]}
    stdin = io.BytesIO(json.dumps(header).encode() + b"\n" + data)
    stdout = io.BytesIO()
    assert batch.worker(str(_iris_artifact_master), stdin, stdout) == 0
    lines = io.BytesIO(stdout.getvalue())
    assert json.loads(lines.readline())["ready"] is True
    answer = json.loads(lines.readline())
    values = array_values(lines.read(answer["array_bytes"]), answer["dtype"], answer["shape"])
    assert answer["id"] == 9 and answer["ok"] == len(rows) and lines.read() == b""
    assert values == load(_iris_artifact_master).predict(iris_rows)
