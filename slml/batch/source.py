"""Read a table (CSV, JSON Lines, Parquet; a path or an fsspec URL) in fixed partitions.

Partition ``k`` is always rows ``[k * chunk_rows, (k + 1) * chunk_rows)`` of the file,
whatever the reader's own block sizes, so a rerun sees the same partitions (resume) and
every engine the same work. Memory is bounded by one partition plus a reader block.

CSV fields are read as strings and converted by the endpoint's ``text/csv`` rules in the
worker, so a bad value fails its row, not the whole file; a line with the wrong number of
fields, or a JSON Lines line that is not an object, fails its own row the same way
(``Chunk.bad``). Parquet columns keep their types.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
             ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip


class SourceError(ValueError):
    """The input cannot be read as a table."""


@dataclass(frozen=True)
class Chunk:
    """One partition: ``rows`` hold every input column, in ``header`` order."""

    index: int
    start: int
    header: tuple[str, ...]
    rows: list[list[Any]]
    text: bool
    bad: dict[int, str] = field(default_factory=dict)  # row in chunk -> why unreadable
    csv: str | None = None  # instead of rows: the CSV lines, for the worker to parse
    size: int = 0  # rows in ``csv``

    def __len__(self) -> int:
        return self.size if self.csv is not None else len(self.rows)

    def column(self, name: str) -> list[Any]:
        at = self.header.index(name)
        return [row[at] for row in self.rows]

    def select(self, names: list[str]) -> list[list[Any]]:
        """The rows with just ``names``, in that order (the rows themselves when equal)."""
        if tuple(names) == self.header:
            return self.rows
        at = [self.header.index(n) for n in names]
        return [[row[i] for i in at] for row in self.rows]


def input_format(url: str, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise SourceError(f"--input-format {given!r} is not one of {', '.join(FORMATS)}")
        return given
    name = url.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    raise SourceError(f"cannot tell the format of {url} from its name (.csv, .jsonl, .parquet)")


class Table:
    """An opened input: its columns, an optional row count, and its partitions."""

    def __init__(self, url: str, *, fmt: str | None = None, chunk_rows: int) -> None:
        import fsspec

        self.url = url
        self.format = input_format(url, fmt)
        self.chunk_rows = chunk_rows
        self.fs, self.path = fsspec.core.url_to_fs(url)
        if not self.fs.isfile(self.path):
            raise SourceError(f"{url} is not a file")
        self.size = int(self.fs.size(self.path) or 0)
        self.header = self._header()
        self._handle: Any = None
        self._bad: dict[int, str] = {}  # global row -> why it could not be read
        self._produced = 0  # partitions handed out by chunks()
        self._text_bytes = 0  # the CSV text of those partitions (characters)
        self.rows_total = self._count_rows()
        self._compressed = fsspec.utils.infer_compression(self.path) is not None

    def _count_rows(self) -> int | None:
        """The row count, where the file states it (Parquet)."""
        if self.format != "parquet":
            return None
        import pyarrow.parquet as pq

        with self.fs.open(self.path, "rb") as f:
            return int(pq.ParquetFile(f).metadata.num_rows)

    def partitions_left(self) -> float | None:
        """About how many partitions were not handed out yet: from the row count
        (Parquet), the bytes of those handed out (CSV) or the file position (JSON Lines);
        None before the first one, or for a compressed file."""
        if self.rows_total is not None:
            return max(0.0, -(-self.rows_total // self.chunk_rows) - self._produced)
        if not self._produced or self._compressed:
            return None
        if self._text_bytes:  # the reader is up to a block ahead of the partitions
            return max(0.0, (self.size - self._text_bytes) / self._text_bytes) * self._produced
        fraction = self.fraction_read()
        return self._produced * (1 - fraction) / fraction if fraction else None

    def fraction_read(self) -> float | None:
        """How far through the file the reader is (CSV and JSON Lines), 0..1."""
        handle = self._handle
        if handle is None or not self.size or handle.closed:
            return None
        try:
            return min(1.0, handle.tell() / self.size)
        except (OSError, ValueError):
            return None

    def _header(self) -> list[str]:
        compression = "infer"
        with self.fs.open(self.path, "rb", compression=compression) as raw:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                return list(pq.ParquetFile(raw).schema_arrow.names)
            first = io.TextIOWrapper(raw, encoding="utf-8", newline="").readline()
        if not first.strip():
            raise SourceError(f"{self.url} is empty")
        if self.format == "jsonl":
            try:
                obj = json.loads(first)
            except ValueError as exc:
                raise SourceError(f"{self.url} line 1 is not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise SourceError(f"{self.url} line 1 is not a JSON object")
            return list(obj)
        return [name.strip() for name in next(csv.reader([first]))]

    def chunks(self) -> Iterator[Chunk]:
        """Every partition in order. Blocking; reads the file once."""
        readers = {"csv": self._csv, "jsonl": self._jsonl, "parquet": self._parquet}
        with self.fs.open(self.path, "rb", compression="infer") as handle:
            self._handle = handle
            for chunk in readers[self.format](handle):
                self._produced += 1
                self._text_bytes += len(chunk.csv or "")
                yield chunk
        self._handle = None

    def _partitions(self, blocks: Iterator[list[list[Any]]], *, text: bool) -> Iterator[Chunk]:
        """Re-cut reader blocks (lists of rows) into partitions of exactly chunk_rows."""
        pending: list[list[Any]] = []
        index = 0
        for block in blocks:
            pending += block
            while len(pending) >= self.chunk_rows:
                cut, pending = pending[: self.chunk_rows], pending[self.chunk_rows :]
                yield self._chunk(index, cut, text)
                index += 1
        if pending:
            yield self._chunk(index, pending, text)

    def _chunk(self, index: int, rows: list[list[Any]], text: bool) -> Chunk:
        start = index * self.chunk_rows
        bad = {row - start: self._bad.pop(row)
               for row in [r for r in self._bad if start <= r < start + len(rows)]}  # fmt: skip
        return Chunk(index, start, tuple(self.header), rows, text, bad)

    def _csv(self, handle: Any) -> Iterator[Chunk]:
        """CSV lines are passed on as text, parsed (in parallel) by the workers; only a
        block holding a quote, where a line may not be a row, is parsed here. Partitions
        are cut at line ends in the text itself, not line by line."""
        pending: list[str] = []
        held = 0  # rows in ``pending``
        index = 0
        for text, rows in self._csv_blocks(handle):
            while held + rows >= self.chunk_rows:
                head, text = _first_lines(text, self.chunk_rows - held, rows)
                rows -= self.chunk_rows - held
                yield self._text_chunk(index, "".join((*pending, head)), self.chunk_rows)
                pending, held, index = [], 0, index + 1
            if rows:
                pending.append(text if isinstance(text, str) else "".join(text))
                held += rows
        if held:
            yield self._text_chunk(index, "".join(pending), held)

    def _text_chunk(self, index: int, text: str, rows: int) -> Chunk:
        return Chunk(index, index * self.chunk_rows, tuple(self.header), [], True,
                     csv=text, size=rows)  # fmt: skip

    def _csv_blocks(self, handle: Any) -> Iterator[tuple[str | list[str], int]]:
        """Blocks of whole CSV rows with their count: a text of one row per line, or one
        string per row where a row may span lines. Blocking."""
        rest = b""
        first = True
        while block := handle.read(1 << 20):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            block, rest = block[:cut], block[cut:]
            if block.count(b'"') % 2:  # a quoted field goes on past this line end
                block, rest = b"", block + rest
                continue
            if first:
                block = block.split(b"\n", 1)[1] if b"\n" in block else b""
                first = False
            yield self._rows_text(block)
        if rest and not first:
            yield self._rows_text(rest + b"\n")

    def _rows_text(self, block: bytes) -> tuple[str | list[str], int]:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{self.url} is not UTF-8 text: {exc}") from None
        if '"' not in text and text.isascii() and not _blank_line(text):
            return text, text.count("\n")  # one line, one row, as it is
        if '"' not in text:  # drop blank lines
            rows = [line + "\n" for line in text.split("\n") if line.strip()]
            return "".join(rows), len(rows)
        out = io.StringIO()
        writer = csv.writer(out)
        rows = []
        try:
            for fields in csv.reader(io.StringIO(text)):
                if fields:
                    writer.writerow(fields)
                    rows.append(out.getvalue())
                    out.seek(0)
                    out.truncate()
        except csv.Error as exc:
            raise SourceError(f"{self.url} is not a readable CSV file: {exc}") from None
        return rows, len(rows)  # a quoted field may hold a line end: one string per row

    def _jsonl(self, handle: Any) -> Iterator[Chunk]:
        lines = io.TextIOWrapper(handle, encoding="utf-8", newline="")

        def blocks() -> Iterator[list[list[Any]]]:
            number = rows = 0
            while block := list(itertools.islice(lines, 8192)):
                out: list[list[Any]] = []
                for line in block:
                    number += 1
                    if not line.strip():
                        continue
                    obj = _json_object(line)
                    if obj is None:
                        self._bad[rows + len(out)] = f"line {number} is not a JSON object"
                        obj = {}
                    out.append([obj.get(name) for name in self.header])
                rows += len(out)
                yield out

        yield from self._partitions(blocks(), text=False)

    def _parquet(self, handle: Any) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(handle).iter_batches(batch_size=self.chunk_rows)
        blocks = ([list(row) for row in zip(*(batch.column(n).to_pylist() for n in self.header),
                                             strict=True)] for batch in batches)  # fmt: skip
        yield from self._partitions(blocks, text=False)


_BLANK_LINE = re.compile(r"^[ \t\r\f\v]*\n", re.M)  # a line str.strip() empties


def _blank_line(text: str) -> bool:
    """Whether ``text`` (lines, each ending in a line end) has a line of only ASCII
    whitespace; without spaces, tabs or carriage returns that is ``"\\n\\n"``, found
    faster than by the expression."""
    if any(c in text for c in " \t\r\f\v"):
        return _BLANK_LINE.search(text) is not None
    return text.startswith("\n") or "\n\n" in text


def _first_lines(rows: str | list[str], count: int, total: int) -> tuple[str, str | list[str]]:
    """The first ``count`` of the ``total`` rows of a block (see ``Table._csv_blocks``)
    and the rest; a text is searched for the cut from its nearer end."""
    if isinstance(rows, list):
        return "".join(rows[:count]), rows[count:]
    if count <= total - count:  # the last piece is what follows the count-th line end
        at = len(rows) - len(rows.split("\n", count)[-1])
    else:  # the first piece is the rows up to the count-th line end (rows ends in one)
        at = len(rows.rsplit("\n", total - count + 1)[0]) + 1
    return rows[:at], rows[at:]


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
