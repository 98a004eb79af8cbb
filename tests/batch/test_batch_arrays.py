"""CSV partitions of plain numbers are parsed by the batch parent (pyarrow) into float64
columns; anything the endpoint's per-field checks could decide otherwise is left as text."""

from __future__ import annotations

import struct

import pytest

from slml.batch.arrays import numeric_columns
from tests.runtime.test_runtime_batch_csv import EDGES

HEADER = ["a", "b", "c", "d"]
PLAIN = ["plain", "no final line end", "CRLF", "spaces around fields",
         "signs, exponents, bare dots", "integers"]  # fmt: skip


def floats(data: bytes) -> list[float]:
    return list(struct.unpack(f"={len(data) // 8}d", data))


@pytest.mark.parametrize("name", PLAIN)
def test_plain_numbers_become_columns_with_floats_values(name: str) -> None:
    text = EDGES[name]
    lines = [line for line in text.splitlines() if line]
    got = numeric_columns(text, HEADER, HEADER, len(lines))
    assert got is not None
    columns = [[float(line.split(",")[j]) for line in lines] for j in range(4)]
    assert floats(got) == [v for column in columns for v in column]


@pytest.mark.parametrize("name", sorted(set(EDGES) - set(PLAIN)))
def test_anything_else_stays_text(name: str) -> None:
    text = EDGES[name]
    assert numeric_columns(text, HEADER, HEADER, text.strip().count("\n") + 1) is None


def test_only_the_features_are_taken_in_the_models_order() -> None:
    text = "id-1,0.2,1.4,3.5,5.1\nid-2,1.3,4.3,2.9,6.2\n"  # a string column is fine
    got = numeric_columns(text, ["id", *HEADER], ["d", "c", "b", "a"], 2)
    assert got is not None and floats(got) == [5.1, 6.2, 3.5, 2.9, 1.4, 4.3, 0.2, 1.3]


def test_a_row_count_that_does_not_match_stays_text() -> None:
    assert numeric_columns(EDGES["plain"], HEADER, HEADER, 4) is None
