"""CSV cells typed by the model's schema (booleans, strings, missing values) and
``--sample`` files read as DataFrames with their dtypes."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml.cli.payload import load_payload, load_sample

SCHEMA = {"kind": "columns", "columns": [
    {"name": "zip", "dtype": "string"}, {"name": "member", "dtype": "bool"},
    {"name": "age", "dtype": "int64"},
]}  # fmt: skip


def test_csv_cells_follow_the_schema(tmp_path: Path) -> None:
    named = tmp_path / "a.csv"
    named.write_text("zip,member,age\n01234,true,30\n75001,0,\n")
    assert load_payload(None, named, schema=SCHEMA) == {"instances": [
        {"zip": "01234", "member": True, "age": 30},
        {"zip": "75001", "member": False, "age": None},
    ]}  # fmt: skip
    plain = tmp_path / "b.csv"
    plain.write_text("01234,false,30\n")
    assert load_payload(None, plain, schema=SCHEMA) == {"instances": [["01234", False, 30]]}


def test_csv_without_a_schema_guesses(tmp_path: Path) -> None:
    named = tmp_path / "a.csv"
    named.write_text("city,member,x\nparis,True,1.5\nlyon,false,\n")
    assert load_payload(None, named) == {"instances": [
        {"city": "paris", "member": True, "x": 1.5}, {"city": "lyon", "member": False, "x": None},
    ]}  # fmt: skip


def test_samples_keep_dtypes(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "flag": [True, False], "s": ["x", "y"]})
    frame.to_csv(tmp_path / "s.csv", index=False)
    from_csv = load_sample(tmp_path / "s.csv")
    assert [t.kind for t in from_csv.dtypes] == ["i", "b", "O"]
    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "s.parquet")
    assert list(load_sample(tmp_path / "s.parquet").columns) == ["a", "flag", "s"]
    (tmp_path / "rows.json").write_text("[[1, 2], [3, 4]]")
    assert load_sample(tmp_path / "rows.json") == [[1, 2], [3, 4]]
    (tmp_path / "plain.csv").write_text("1,2\n3,4\n")
    assert load_sample(tmp_path / "plain.csv") == [[1, 2], [3, 4]]
