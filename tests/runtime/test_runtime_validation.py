"""Payload validation against signatures: no model, no numpy, just the rules."""

from __future__ import annotations

import math

import pytest

from slml.runtime.errors import RequestError
from slml.runtime.validation import input_spec, parse_csv, parse_payload

MIXED = input_spec({
    "kind": "columns",
    "columns": [
        {"name": "city", "dtype": "string"},
        {"name": "rooms", "dtype": "int32"},
        {"name": "area", "dtype": "float64", "nullable": True},
        {"name": "garden", "dtype": "bool"},
    ],
})  # fmt: skip
IMAGE = input_spec({"kind": "tensor", "dtype": "float32", "shape": [-1, 2, 3]})
WIDE = input_spec({"kind": "tensor", "dtype": "float64", "shape": [-1, -1]})


def rejects(payload, spec, code="invalid_input", *, max_rows=100) -> str:
    with pytest.raises(RequestError) as err:
        parse_payload(payload, spec, max_rows=max_rows)
    assert err.value.code == code, err.value.message
    return err.value.message


def test_mixed_columns_accept_and_convert():
    batch = parse_payload({"instances": [["Oslo", 3.0, None, True], ["Rome", 2, 40, False]]},
                          MIXED, max_rows=10)  # fmt: skip
    assert batch.validated and batch.columns == ["city", "rooms", "area", "garden"]
    assert batch.rows[0][:2] == ["Oslo", 3] and math.isnan(batch.rows[0][2])
    assert batch.rows[1] == ["Rome", 2, 40.0, False]
    assert batch.dtype == "object"


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ([None, 3, 1.0, True], "null is not allowed"),
        ([float("nan"), 3, 1.0, True], "NaN is not allowed"),
        ([1, 3, 1.0, True], "expected a string"),
        (["Oslo", 2**40, 1.0, True], "out of range for int32"),
        (["Oslo", True, 1.0, True], "expected an integer"),
        (["Oslo", 3, 1.0, 1], "expected true or false"),
        (["Oslo", 3, float("inf"), True], "out of range"),
    ],
)
def test_mixed_columns_reject(row, words):
    assert words in rejects({"instances": [row]}, MIXED)


def test_tensor_shapes():
    ok = [[[1, 2, 3], [4, 5, 6]]]
    assert parse_payload({"instances": ok}, IMAGE, max_rows=10).rows == [
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    ]
    assert "expected 3" in rejects({"instances": [[[1, 2, 3], [4, 5]]]}, IMAGE)
    assert "must be a list" in rejects({"instances": [[1, 2]]}, IMAGE)
    assert "ragged" in rejects({"instances": [[1.0, 2.0], [1.0]]}, WIDE)
    assert "no column names" in rejects({"inputs": {"a": [1.0]}}, WIDE, "invalid_request")


def test_batch_limits():
    assert rejects({"instances": [[1.0]] * 3}, WIDE, "batch_too_large", max_rows=2)
    assert rejects({"inputs": {}}, MIXED, "empty_batch")


def test_without_signature_rows_pass_through():
    batch = parse_payload({"instances": [{"free": "form"}, [1, "x"]]}, None, max_rows=10)
    assert not batch.validated and batch.rows == [{"free": "form"}, [1, "x"]]


def test_csv_with_header_and_conversion():
    payload = parse_csv("city,rooms,area,garden\nOslo,3,,true\n", MIXED)
    assert payload == {"instances": [["Oslo", 3, None, True]]}
    assert parse_csv("1,2.5,abc\n", None) == {"instances": [[1, 2.5, "abc"]]}
    with pytest.raises(RequestError, match="expected 4"):
        parse_csv("Oslo,3\n", MIXED)
