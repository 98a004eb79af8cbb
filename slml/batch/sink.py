"""Write a batch job's output: one file per partition, an error file, a resume point.

Layout under OUTPUT (a directory or an fsspec URL)::

    _slml_batch.json            what this output is for (input, model digest, partitioning)
    part-00000.parquet          row, the pass-through columns, prediction (csv/jsonl too)
    errors/part-00000.jsonl     {"row", "code", "message"} per failed row (if any)
    _done/part-00000.json       written last: partition 0 is complete (rerun skips it)
    errors.jsonl, _SUCCESS      at the end: every error in row order, and the summary

The layout is the one ``slml.runtime.batch_job`` (Cloud Run Job tasks) writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from slml.batch.arrays import arrow_predictions
from slml.batch.source import Chunk
from slml.runtime.batch import PART, Scored

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
JOB_FILE = "_slml_batch.json"


class OutputError(ValueError):
    """OUTPUT holds something else, or cannot be written."""


class Output:
    """The output directory of one batch job. Methods block; none deletes input."""

    def __init__(self, url: str, *, fmt: str, keep: tuple[str, ...]) -> None:
        import fsspec

        if fmt not in OUTPUT_FORMATS:
            raise OutputError(f"--format {fmt!r} is not one of {', '.join(OUTPUT_FORMATS)}")
        self.url = url
        self.format = fmt
        self.keep = keep
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.root = self.root.rstrip("/")

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def prepare(self, job: dict[str, Any], *, overwrite: bool) -> bool:
        """Claim OUTPUT for ``job``. Returns True when it resumes an earlier run of the
        same job; raises OutputError when OUTPUT holds anything else (unless overwrite)."""
        marker = self._path(JOB_FILE)
        if self.fs.exists(marker):
            earlier = json.loads(self.fs.cat_file(marker))
            if earlier == job and not overwrite:
                return True
            if not overwrite:
                changed = sorted(k for k in {*job, *earlier} if job.get(k) != earlier.get(k))
                raise OutputError(
                    f"{self.url} holds the output of a different batch job "
                    f"({', '.join(changed)} changed)"
                )
            self._clear()
        elif self.fs.exists(self.root) and self.fs.ls(self.root):
            raise OutputError(f"{self.url} exists and is not the output of an slml batch job")
        self.fs.makedirs(self._path("_done"), exist_ok=True)
        self.fs.makedirs(self._path("errors"), exist_ok=True)
        self._write_bytes(marker, json.dumps(job, indent=1, sort_keys=True).encode())
        return False

    def _clear(self) -> None:
        for sub in ("_done", "errors"):
            if self.fs.exists(self._path(sub)):
                self.fs.rm(self._path(sub), recursive=True)
        for name in self.fs.ls(self.root, detail=False):
            base = str(name).rstrip("/").rsplit("/", 1)[-1]
            if base.startswith("part-") or base in ("errors.jsonl", "_SUCCESS", JOB_FILE):
                self.fs.rm(name)

    def load_writer(self, *, lists: bool = True) -> None:
        """Load this format's writer now, so that the first partition does not wait for
        it: pyarrow's Parquet module, and for predictions that come as lists of values
        (``lists``), pandas, which pyarrow imports (where installed) on its first
        ``pa.array``: about a second together. Arrays of predictions do without it."""
        if self.format == "jsonl":
            return
        import pyarrow as pa

        if lists:
            pa.array([0])
        if self.format == "parquet":
            import pyarrow.parquet
        else:
            import pyarrow.csv  # noqa: F401

    def done(self, index: int) -> dict[str, Any] | None:
        """The record of partition ``index`` if it was completed by an earlier run."""
        path = self._path("_done", f"{PART.format(index)}.json")
        return json.loads(self.fs.cat_file(path)) if self.fs.exists(path) else None

    def write(self, chunk: Chunk, scored: Scored, *, kept: dict[str, list[Any]],
              seconds: float) -> dict[str, Any]:
        """Write partition ``chunk.index`` (predictions, then errors, then its record);
        ``kept`` holds the pass-through columns' values for every row of the chunk. A
        partition without failed rows has no error file (one an earlier run left goes)."""
        name = PART.format(chunk.index)
        self._write_bytes(self._path(f"{name}.{self.format}"), self._table(chunk, scored, kept))
        errors = "".join(
            json.dumps({"row": chunk.start + i, "code": code, "message": message}) + "\n"
            for i, code, message in sorted(scored.errors)
        )
        if errors:
            self._write_bytes(self._path("errors", f"{name}.jsonl"), errors.encode())
        elif self.fs.exists(stale := self._path("errors", f"{name}.jsonl")):
            self.fs.rm(stale)
        record = {"partition": chunk.index, "rows": len(chunk),
                  "predictions": len(scored.ok), "errors": len(scored.errors),
                  "seconds": round(seconds, 4)}  # fmt: skip
        self._write_bytes(self._path("_done", f"{name}.json"), json.dumps(record).encode())
        return record

    def gather_errors(self, partitions: int) -> str:
        """Every partition's errors in one errors.jsonl, in row order; returns its path."""
        path = self._path("errors.jsonl")
        with self.fs.open(path, "wb") as out:
            for k in range(partitions):
                part = self._path("errors", f"{PART.format(k)}.jsonl")
                if self.fs.exists(part):
                    out.write(self.fs.cat_file(part))
        return path

    def succeed(self, summary: dict[str, Any]) -> None:
        """Mark the job complete (``_SUCCESS`` holds the summary)."""
        self._write_bytes(self._path("_SUCCESS"), json.dumps(summary, indent=1).encode())

    def _write_bytes(self, path: str, data: bytes) -> None:
        """Write whole or not at all: a temporary name, then a rename."""
        parent, base = path.rsplit("/", 1)
        tmp = f"{parent}/.{base}.tmp"
        with self.fs.open(tmp, "wb") as handle:
            handle.write(data)
        self.fs.mv(tmp, path)

    def _table(self, chunk: Chunk, scored: Scored, passed: dict[str, list[Any]]) -> bytes:
        kept = {name: [passed[name][i] for i in scored.ok] for name in self.keep}
        if self.format == "jsonl":
            predictions = scored.values
            lines = (
                json.dumps({"row": chunk.start + i, **{n: v[j] for n, v in kept.items()},
                            "prediction": predictions[j]})
                for j, i in enumerate(scored.ok)
            )
            return "".join(f"{line}\n" for line in lines).encode()
        import pyarrow as pa

        columns = {"row": _row_numbers(chunk.start, scored.ok)}
        columns |= {n: _arrow(v, flat=self.format == "csv") for n, v in kept.items()}
        prediction = arrow_predictions(*scored.array) if scored.array else None
        columns["prediction"] = (prediction if prediction is not None
                                 else _arrow(scored.values, flat=self.format == "csv"))
        table = pa.Table.from_arrays(list(columns.values()), names=list(columns))
        sink = pa.BufferOutputStream()
        if self.format == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, sink)
        else:
            import pyarrow.parquet as pq

            # row numbers are all distinct: a dictionary of them never pays (it costs the
            # write 40% more time and the file a third more bytes, for 50,000 iris rows)
            pq.write_table(table, sink, use_dictionary=[n for n in columns if n != "row"])
        return bytes(sink.getvalue())


def _row_numbers(start: int, ok: list[int]) -> Any:
    """The rows ``ok`` of a partition starting at row ``start``, as an int64 Arrow array."""
    import pyarrow as pa

    if ok and ok[-1] == len(ok) - 1:  # sorted: every row from 0 on
        try:
            import numpy as np
        except ImportError:
            pass
        else:  # (pa.array would import pandas, which the output does not need)
            rows = np.arange(start, start + len(ok), dtype=np.int64)
            return pa.Array.from_buffers(pa.int64(), len(ok), [None, pa.py_buffer(rows)])
    return pa.array([start + i for i in ok], pa.int64())


def _arrow(values: Iterable[Any], *, flat: bool) -> Any:
    """An Arrow array of ``values``; JSON text where types mix (or, for CSV, nest)."""
    import pyarrow as pa

    values = list(values)
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([json.dumps(v) for v in values], pa.string())
    if flat and (pa.types.is_nested(array.type)):
        return pa.array([json.dumps(v) for v in values], pa.string())
    return array
