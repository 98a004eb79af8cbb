"""CSV partitions are cut in the text itself: whatever the layout of the file (blank
lines, CRLF, quoted fields over several lines, no final line end, non-ASCII text, rows
across the reader's 1 MiB blocks), partition k holds exactly rows [k*n, (k+1)*n) as the
csv module reads them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from slml.batch.source import Table

HEADER = "a,b,c\n"


def rows_of(text: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text)) if r and any(f.strip() for f in r)]


def partitions(path: Path, chunk_rows: int) -> list[list[list[str]]]:
    table = Table(str(path), chunk_rows=chunk_rows)
    out = []
    for chunk in table.chunks():
        assert chunk.csv is not None and chunk.start == chunk.index * chunk_rows
        parsed = [r for r in csv.reader(io.StringIO(chunk.csv)) if r]
        assert len(parsed) == len(chunk)
        out.append(parsed)
    return out


LAYOUTS = {
    "plain": "".join(f"{i},{i + 1},{i + 2}\n" for i in range(23)),
    "no final line end": "".join(f"{i},{i},{i}\n" for i in range(10)).rstrip("\n"),
    "CRLF": "".join(f"{i},{i},{i}\r\n" for i in range(11)),
    "blank and whitespace lines": "1,2,3\n\n4,5,6\n   \n\r\n7,8,9\n\n\n10,11,12\n",
    "quoted line ends": '1,"two\nlines",3\n4,5,6\n"7","8","9"\n10,",",12\n' * 3,
    "non-ASCII": "é,ü,ß\n1,2,3\n\u00a0\n4,5,6\n",
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 1000])
def test_partitions_are_the_files_rows_in_order(tmp_path: Path, layout: str,
                                                chunk_rows: int) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + layout, newline="")
    expected = rows_of(HEADER + layout)[1:]
    if "\u00a0" in layout:  # a line of only non-ASCII whitespace is blank, as str.strip says
        expected = [r for r in expected if r != ["\u00a0"]]
    got = partitions(path, chunk_rows)
    assert [row for part in got for row in part] == expected
    assert [len(p) for p in got[:-1]] == [chunk_rows] * (len(got) - 1)


def test_rows_across_reader_blocks_are_cut_at_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = [f"{i},{i * 2},{i % 7}\n" for i in range(300_000)]  # about 5 MB: five blocks
    path.write_text(HEADER + "".join(lines))
    got = partitions(path, 70_001)
    assert [len(p) for p in got] == [70_001] * 4 + [300_000 - 4 * 70_001]
    assert [row for part in got for row in part] == [line.strip().split(",") for line in lines]


def test_the_partitions_left_are_estimated_from_what_was_handed_out(tmp_path: Path) -> None:
    """The reader is a 1 MiB block ahead of the partitions; the estimate is not."""
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(f"{i:06},{i * 2:07},{i % 7}\n" for i in range(300_000)))
    table = Table(str(path), chunk_rows=10_000)
    assert table.partitions_left() is None
    left = [table.partitions_left() for _ in table.chunks()]
    assert len(left) == 30
    for k, estimate in enumerate(left):
        assert estimate is not None and abs(estimate - (29 - k)) <= 0.1 * (30 - k) + 0.5
