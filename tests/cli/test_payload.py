from pathlib import Path

import pytest

from slml.cli.payload import load_payload
from slml.errors import UsageError


def test_inline_forms() -> None:
    assert load_payload('{"instances": [[1, 2]]}', None) == {"instances": [[1, 2]]}
    assert load_payload("[[1, 2], [3, 4]]", None) == {"instances": [[1, 2], [3, 4]]}
    assert load_payload('{"inputs": {"a": [1]}}', None) == {"inputs": {"a": [1]}}


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    plain.write_text("5.1,3.5\n6,2.5\n")
    assert load_payload(None, plain) == {"instances": [[5.1, 3.5], [6, 2.5]]}
    named = tmp_path / "b.csv"
    named.write_text("x,y\n1,2.5\n")
    assert load_payload(None, named) == {"instances": [{"x": 1, "y": 2.5}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [("{bad", "not valid JSON"), ("42", "must be a JSON object or list")],
)
def test_bad_inline(data: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_payload(data, None)


def test_both_or_neither(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="either inline or with --file"):
        load_payload(None, None)
    with pytest.raises(UsageError, match="either inline or with --file"):
        load_payload("[]", tmp_path / "x.json")


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_payload(None, tmp_path / "missing.json")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(UsageError, match="has no rows"):
        load_payload(None, empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(UsageError, match="no data rows"):
        load_payload(None, header_only)
