"""A worker answers float64 columns predicted in one call with the model's own array, as
bytes; the parent reads back exactly the JSON values the answer would have carried, and
builds exactly the Arrow array those values would make, so every engine's output stays
the same. A real worker process speaks the protocol."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.batch.arrays import arrow_predictions
from slml.batch.sink import _arrow
from slml.runtime import batch, batch_worker
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
    assert array_values(array.dtype.str, list(array.shape), array.tobytes()) == jsonable(array)


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
    head, data = batch_worker._answer(model, job)
    assert head["array_bytes"] == len(data) and head["ok"] == len(iris_rows) * 50
    expected = batch.score_frame(model, job).predictions
    assert array_values(head["dtype"], head["shape"], data) == expected


def test_the_worker_protocol_carries_an_array_after_its_line(_iris_artifact_master: Path,
                                                             iris_rows: list[list[float]]) -> None:
    rows = np.array(iris_rows)
    data = frame(rows).pop("f64")
    header = {"id": 9, "f64_bytes": len(data), "size": len(rows), "width": rows.shape[1]}
    stdin = io.BytesIO(json.dumps(header).encode() + b"\n" + data)
    stdout = io.BytesIO()
    assert batch_worker.worker(str(_iris_artifact_master), stdin, stdout) == 0
    lines = io.BytesIO(stdout.getvalue())
    assert json.loads(lines.readline())["ready"] is True
    answer = json.loads(lines.readline())
    values = array_values(answer["dtype"], answer["shape"], lines.read(answer["array_bytes"]))
    assert answer["id"] == 9 and answer["ok"] == len(rows) and lines.read() == b""
    assert values == load(_iris_artifact_master).predict(iris_rows)


ARROW = {  # array -> whether the parent builds its Arrow array from the bytes
    "int32": (np.array([3, -1, 7], dtype=np.int32), True),
    "uint8": (np.array([0, 255], dtype=np.uint8), True),
    "uint64 within int64": (np.array([0, 2**63 - 1], dtype=np.uint64), True),
    "uint64 past int64": (np.array([0, 2**63 + 5], dtype=np.uint64), False),
    "float with NaN and infinity": (np.array([1.5, np.nan, -np.inf, -0.0]), True),
    "float32": (np.array([0.1, 1e-3, 3.0], dtype=np.float32), True),
    "float, none finite": (np.array([np.nan, np.inf]), False),
    "bool": (np.array([True, False, True] * 5), True),
    "labels": (np.array(["setosa", "versicolor", "virginica", ""]), True),
    "one-letter labels": (np.array(["a", "b", ""]), True),
    "labels beyond ASCII": (np.array(["setosa", "é"]), False),
    "a NUL inside a label": (np.array(["a\x00b", "c"]), False),
    "probabilities (2-D)": (np.array([[0.1, 0.9], [0.5, 0.5]]), False),
}


@pytest.mark.parametrize(("array", "built"), ARROW.values(), ids=ARROW.keys())
def test_the_parent_builds_the_arrow_array_the_json_values_would_make(array: Any,
                                                                      built: bool) -> None:
    got = arrow_predictions(array.dtype.str, list(array.shape), array.tobytes())
    assert (got is not None) == built
    if got is not None:
        expected = _arrow(jsonable(array), flat=False)
        got.validate(full=True)
        assert got.type == expected.type and got.equals(expected)
        assert got.to_pylist() == jsonable(array)
