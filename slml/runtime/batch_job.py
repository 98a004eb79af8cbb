"""A batch job's task inside the container image: score this task's share of a file.

``python -m slml.runtime.batch_job --input F --output DIR`` reads a CSV (with a header)
or JSON Lines file in partitions of ``--chunk-rows`` rows and scores the partitions whose
number ``k`` satisfies ``k % TASK_COUNT == TASK_INDEX``, taken from Cloud Run Jobs'
``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT`` (one task: all of them). Input and
output are local paths: on Cloud Run a Cloud Storage bucket is mounted as a volume.

Output, the same layout as ``slml batch --format jsonl``::

    DIR/part-00000.jsonl          {"row": 0, "prediction": ...} per valid row
    DIR/errors/part-00000.jsonl   {"row": 7, "code": ..., "message": ...} per failed row
    DIR/_done/part-00000.json     written last: the partition is complete (resume point)

A rerun skips partitions that are done. Exit 0 when every row was scored, 1 when some
rows failed (see errors/), 2 when the job could not run (bad arguments, unreadable model).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slml.runtime.batch import (
    PART,
    LayoutError,
    Scored,
    feature_columns,
    score,
    with_unreadable,
)
from slml.runtime.loader import LoadedModel, load
from slml.runtime.manifest import ArtifactFormatError

DEFAULT_CHUNK_ROWS = 10_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="slml.runtime.batch_job", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="CSV (with header) or .jsonl file")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--model", default=os.environ.get("SLML_MODEL_DIR", "model"))
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--keep", action="append", default=[],
                        help="an input column copied to the output (repeatable)")
    return parser.parse_args(argv)


def task_share(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[int, int]:
    """(index, count) of this task; Cloud Run sets both, a plain run is task 0 of 1."""
    count = int(environ.get("CLOUD_RUN_TASK_COUNT", "1"))
    index = int(environ.get("CLOUD_RUN_TASK_INDEX", "0"))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"task {index} of {count} is not a valid share")
    return index, count


def read_table(path: Path) -> tuple[list[str], Iterator[list[Any] | None], bool]:
    """(header, rows, text): CSV rows are strings (converted by the CSV rules), JSON Lines
    rows are typed values, taken in the order of the first line's keys (None for a line
    that is not a JSON object)."""
    handle = path.open("r", encoding="utf-8", newline="")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        first = handle.readline()
        header = list(json.loads(first)) if first.strip() else []
        lines = itertools.chain([first], handle)
        rows = (_json_row(line, header) for line in lines if line.strip())
        return header, rows, False
    reader = csv.reader(handle)
    header = [h.strip() for h in next(reader, [])]
    return header, (r for r in reader if r), True


def _json_row(line: str, header: list[str]) -> list[Any] | None:
    """The line's values in ``header`` order; None when it is not a JSON object."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return [obj.get(k) for k in header] if isinstance(obj, dict) else None


def run(args: argparse.Namespace, *, environ: dict[str, str] | os._Environ[str] = os.environ
        ) -> tuple[int, int]:
    """Score this task's partitions; returns (predicted rows, failed rows)."""
    index, count = task_share(environ)
    model = load(args.model)
    header, rows, text = read_table(Path(args.input))
    features = feature_columns(header, model.spec, exclude=tuple(args.keep))
    keep = [header.index(k) for k in args.keep]
    out = Path(args.output)
    for sub in ("errors", "_done"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    totals = [0, 0]
    for k, chunk in enumerate(_chunks(rows, args.chunk_rows)):
        if k % count != index or (out / "_done" / f"{PART.format(k)}.json").exists():
            continue
        started = time.perf_counter()
        bad = {i: "the line is not a JSON object" if r is None else
               f"the row has {len(r)} fields, expected {len(header)}"
               for i, r in enumerate(chunk) if r is None or len(r) != len(header)}  # fmt: skip
        readable = [[r[i] for i in features] for j, r in enumerate(chunk)
                    if r is not None and j not in bad]  # fmt: skip
        scored = with_unreadable(score(model, readable, text=text), len(chunk), bad)
        _write(out, k, chunk, scored, start=k * args.chunk_rows, keep=keep, header=header)
        totals[0] += len(scored.ok)
        totals[1] += len(scored.errors)
        _done(out, k, rows=len(chunk), scored=scored, seconds=time.perf_counter() - started,
              model=model)
    return totals[0], totals[1]


def _chunks(rows: Iterator[list[Any] | None], size: int) -> Iterator[list[list[Any] | None]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _write(out: Path, k: int, chunk: list[list[Any] | None], scored: Scored, *, start: int,
           keep: list[int], header: list[str]) -> None:
    lines = []
    for i, prediction in zip(scored.ok, scored.predictions, strict=True):
        row = chunk[i]
        assert row is not None  # a scored row was read: unreadable ones are in scored.errors
        record = {"row": start + i, **{header[j]: row[j] for j in keep}}
        lines.append(json.dumps({**record, "prediction": prediction}))
    _atomic(out / f"{PART.format(k)}.jsonl", lines)
    errors = [json.dumps({"row": start + i, "code": code, "message": message})
              for i, code, message in scored.errors]  # fmt: skip
    _atomic(out / "errors" / f"{PART.format(k)}.jsonl", errors)


def _done(out: Path, k: int, *, rows: int, scored: Scored, seconds: float,
          model: LoadedModel) -> None:
    record = {"partition": k, "rows": rows, "predictions": len(scored.ok),
              "errors": len(scored.errors), "seconds": round(seconds, 4),
              "model": model.name, "version": model.version}  # fmt: skip
    _atomic(out / "_done" / f"{PART.format(k)}.json", [json.dumps(record)])


def _atomic(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        predicted, failed = run(args)
    except (LayoutError, ArtifactFormatError, ValueError, OSError) as exc:
        print(json.dumps({"level": "error", "severity": "ERROR", "message": str(exc)}),
              file=sys.stderr)
        return 2
    print(json.dumps({"level": "info", "severity": "INFO", "message": "batch task done",
                      "predictions": predicted, "errors": failed}))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover - run as a process by the tests
    sys.exit(main())
