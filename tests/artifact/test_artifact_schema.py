"""Signature inference from samples and outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from slml.artifact import schema
from slml.errors import ArtifactError


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (np.zeros((3, 4)), {"kind": "tensor", "dtype": "float64", "shape": [-1, 4]}),
        (
            np.zeros((2, 3), dtype=np.float32),
            {"kind": "tensor", "dtype": "float32", "shape": [-1, 3]},
        ),
        ([[1, 2], [3, 4]], {"kind": "tensor", "dtype": "int64", "shape": [-1, 2]}),
        ([[1, 2.5], [3, 4]], {"kind": "tensor", "dtype": "float64", "shape": [-1, 2]}),
        ([["a", "b"]], {"kind": "tensor", "dtype": "string", "shape": [-1, 2]}),
        ([True, False], {"kind": "tensor", "dtype": "bool", "shape": [-1]}),
        (
            {"age": [30, 40], "height": [1.7, 1.8], "city": ["a", "b"]},
            {
                "kind": "columns",
                "columns": [
                    {"name": "age", "dtype": "int64"},
                    {"name": "height", "dtype": "float64"},
                    {"name": "city", "dtype": "string"},
                ],
            },
        ),
        (
            [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}],
            {
                "kind": "columns",
                "columns": [{"name": "x", "dtype": "int64"}, {"name": "y", "dtype": "string"}],
            },
        ),
    ],
)
def test_infer_inputs(sample: Any, expected: dict[str, Any]) -> None:
    assert schema.infer_inputs(sample) == expected


def test_infer_inputs_from_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"n": [1, 2], "f": [0.5, 1.5], "s": ["a", "b"], "b": [True, False]})
    assert schema.infer_inputs(frame)["columns"] == [
        {"name": "n", "dtype": "int64"},
        {"name": "f", "dtype": "float64"},
        {"name": "s", "dtype": "string"},
        {"name": "b", "dtype": "bool"},
    ]


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ([[1, 2], [3]], "different lengths"),
        ([], "empty"),
        ({"a": [1, 2], "b": [1]}, "same length"),
        ({}, "non-empty list"),
        ("text", "expected a numpy array"),
        (object(), "expected a numpy array"),
        ([{"a": 1}, {"b": 2}], "same keys"),
        ([[1, {"x": 1}]], "mixes types"),
    ],
)
def test_bad_samples_are_explained(sample: Any, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        schema.infer_inputs(sample)


def test_infer_outputs() -> None:
    assert schema.infer_outputs(np.array([0, 1])) == {
        "kind": "tensor",
        "dtype": "int64",
        "shape": [-1],
    }
    assert schema.infer_outputs(np.zeros((2, 3), dtype=np.float32))["shape"] == [-1, 3]
    assert schema.infer_outputs(["setosa", "virginica"])["dtype"] == "string"
    assert schema.infer_outputs({"p": [0.1, 0.2]})["kind"] == "columns"
    assert schema.infer_outputs([{"label": 1}, {"label": 2}]) is None
    assert schema.infer_outputs(3.0) is None


def test_names_and_rows() -> None:
    tensor = {"kind": "tensor", "dtype": "float64", "shape": [-1, 2]}
    assert schema.with_names(tensor, ["a", "b"])["names"] == ["a", "b"]
    assert "names" not in schema.with_names(tensor, ["a", "b", "c"])
    assert schema.as_rows({"a": [1, 2], "b": [3, 4]}) == [[1, 3], [2, 4]]
    assert schema.as_rows(np.array([[1, 2]])) == [[1, 2]]
    assert schema.sample_names([{"a": 1, "b": 2}]) == ["a", "b"]
