"""``slml batch``: score a table of any size with a model artifact, resumably.

``run_batch`` reads INPUT in fixed partitions (``slml.batch.source``), scores them on an
engine (``slml.batch.engines``: worker processes in the model's own environment, or Ray
actors) with the endpoint's validation, and writes one output file per partition plus an
error file (``slml.batch.sink``). A rerun of the same job skips partitions already
written. Rows that fail go to the error file and the run goes on, unless more than
``max_errors`` fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from slml.batch.arrays import numeric_columns
from slml.batch.engines import (
    Engine,
    EngineError,
    EngineStartError,
    LocalEngine,
    RayEngine,
    SparkEngine,
    Work,
)
from slml.batch.sink import Output, OutputError
from slml.batch.source import Chunk, SourceError, Table
from slml.errors import SlmlError
from slml.pipeline import NullReporter, Reporter
from slml.runtime.batch import LayoutError, feature_columns, numeric_inputs, with_unreadable
from slml.runtime.validation import input_spec

ENGINES = ("local", "ray", "spark")
DEFAULT_CHUNK_ROWS = 10_000
Progress = Callable[[int, "int | None", "float | None"], None]


class BatchError(SlmlError):
    """A batch job cannot start, or stopped (too many failed rows, a lost worker)."""


@dataclass(frozen=True)
class BatchSummary:
    """What a run did; ``rows``, ``predictions`` and ``errors`` count skipped partitions."""

    input: str
    output: str
    engine: str
    workers: int
    rows: int
    predictions: int
    errors: int
    partitions: int
    skipped: int
    seconds: float
    errors_file: str
    stopped: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class BatchOptions:
    engine: str = "local"
    workers: int | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    output_format: str = "parquet"
    input_format: str | None = None
    keep: tuple[str, ...] = ()
    max_errors: int | None = None
    overwrite: bool = False
    address: str | None = None


def run_batch(
    model_dir: Path,
    input_url: str,
    output_url: str,
    options: BatchOptions = BatchOptions(),
    *,
    build_dir: Path,
    reporter: Reporter | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Score ``input_url`` into ``output_url``. Blocking. Raises BatchError for bad input
    or options (before anything is written) and when the run stops early."""
    from slml.artifact.store import verified_manifest

    reporter = reporter or NullReporter()
    _check(options)
    manifest = verified_manifest(model_dir)
    try:
        table = Table(input_url, fmt=options.input_format, chunk_rows=options.chunk_rows)
        spec = input_spec((manifest.get("signature") or {}).get("inputs"))
        missing = [k for k in options.keep if k not in table.header]
        if missing:
            raise LayoutError(f"--keep {', '.join(missing)}: no such column in {input_url}")
        features = [table.header[i] for i in feature_columns(table.header, spec,
                                                              exclude=options.keep)]
        output = Output(output_url, fmt=options.output_format, keep=options.keep)
        resumed = output.prepare(_job(table, manifest, options, features),
                                 overwrite=options.overwrite)
    except (SourceError, OutputError, LayoutError, OSError) as exc:
        raise BatchError(str(exc), hint=_hint(exc)) from None
    except ImportError as exc:  # fsspec names the package a URL's filesystem needs
        raise BatchError(f"cannot open {input_url} or {output_url}: {exc}",
                         hint="s3:// needs s3fs, gs:// gcsfs, az:// adlfs (pip install them "
                              "beside slml)") from None
    except ValueError as exc:  # e.g. fsspec: "Protocol not known"
        raise BatchError(f"cannot open {input_url} or {output_url}: {exc}") from None
    if resumed:
        reporter.detail(f"resuming: {output_url} holds this job's earlier run")
    numeric = (not options.keep and table.format == "csv"
               and numeric_inputs(str(manifest.get("flavor")), spec) and _have_numpy())
    engine = _engine(model_dir, options, build_dir=build_dir, reporter=reporter,
                     meanwhile=partial(output.load_writer, lists=not numeric),
                     unread=table.partitions_left)
    if engine.started < engine.workers:  # the local engine starts the rest on demand
        reporter.step(f"scoring {input_url} on up to {engine.workers} {options.engine} workers "
                      "(more start when they would end the run sooner)")  # fmt: skip
    else:
        reporter.step(f"scoring {input_url} on {engine.workers} {options.engine} worker(s)")
    numeric = numeric and engine.takes_arrays
    try:
        return _score_all(table, output, engine, features, options, progress, numeric=numeric)
    except EngineStartError as exc:
        raise BatchError(str(exc)) from None
    except (EngineError, OSError) as exc:
        raise BatchError(f"the batch run stopped: {exc}",
                         hint="rerun the same command: written partitions are kept") from None
    finally:
        engine.close()


def _check(options: BatchOptions) -> None:
    if options.engine not in ENGINES:
        raise BatchError(f"--engine {options.engine!r} is not one of {', '.join(ENGINES)}")
    if options.chunk_rows < 1:
        raise BatchError(f"--chunk-rows must be at least 1, got {options.chunk_rows}")
    if options.workers is not None and options.workers < 1:
        raise BatchError(f"--workers must be at least 1, got {options.workers}")
    if options.max_errors is not None and options.max_errors < 0:
        raise BatchError(f"--max-errors must be 0 or more, got {options.max_errors}")


def _hint(exc: Exception) -> str | None:
    if isinstance(exc, OutputError):
        return "pass --overwrite to replace it, or choose another OUTPUT"
    if isinstance(exc, SourceError):
        return "give a .csv (with a header), .jsonl or .parquet file, or --input-format"
    return None


def _job(table: Table, manifest: dict[str, Any], options: BatchOptions, features: list[str]
         ) -> dict[str, Any]:
    """What makes two runs the same job (and so resumable)."""
    from slml.runtime.manifest import artifact_digest

    return {"input": table.url, "input_bytes": table.size, "format": table.format,
            "model": manifest["name"], "version": str(manifest["version"]),
            "model_digest": artifact_digest(manifest), "features": features,
            "keep": list(options.keep), "chunk_rows": options.chunk_rows,
            "output_format": options.output_format}  # fmt: skip


def _have_numpy() -> bool:
    """Whether numpy is here: answers of arrays (``slml.runtime.batch.array_values``)
    need it, and partitions parsed here are answered so."""
    import importlib.util

    return importlib.util.find_spec("numpy") is not None


def _engine(model_dir: Path, options: BatchOptions, *, build_dir: Path, reporter: Reporter,
            meanwhile: Callable[[], None], unread: Callable[[], float | None]) -> Engine:
    """The engine, started; ``meanwhile`` runs while the first local worker starts to
    load the model, ``unread`` estimates the partitions not read yet."""
    workers = options.workers or os.cpu_count() or 1
    try:
        if options.engine == "ray":
            reporter.step(f"starting {workers} Ray actor(s)")
            return RayEngine(model_dir=model_dir, workers=workers, address=options.address)
        if options.engine == "spark":
            reporter.step(f"starting Spark ({options.address or f'local[{workers}]'})")
            return SparkEngine(model_dir=model_dir, workers=workers, address=options.address)
        from slml.bundle.env import env_python
        from slml.bundle.local import build_local_bundle

        bundle = build_local_bundle(artifact_dir=model_dir, out_dir=build_dir, reporter=reporter)
        reporter.step("starting a worker in the model's environment")
        return LocalEngine(python=env_python(bundle.files["env"]), app_dir=bundle.path / "app",
                           model_dir=bundle.path / "model", workers=workers,
                           meanwhile=meanwhile, unread=unread)
    except EngineError as exc:
        raise BatchError(str(exc)) from None


def _score_all(table: Table, output: Output, engine: Engine, features: list[str],
               options: BatchOptions, progress: Progress | None, *, numeric: bool
               ) -> BatchSummary:
    """Score every partition not written yet. ``numeric``: CSV partitions of plain
    numbers are parsed here and reach the workers as arrays (``slml.batch.arrays``)."""
    started = time.perf_counter()
    counts = {"rows": 0, "predictions": 0, "errors": 0, "partitions": 0, "skipped": 0}
    chunks: dict[int, Chunk] = {}
    total = table.rows_total
    read = [0]  # partitions read, some of them maybe not written yet

    def work() -> Iterator[Work]:
        for chunk in table.chunks():
            read[0] += 1
            earlier = output.done(chunk.index)
            if earlier is not None:
                counts["partitions"] += 1
                counts["skipped"] += 1
                _add(counts, earlier)
                continue
            chunks[chunk.index] = chunk
            parsed = (numeric_columns(chunk.csv, table.header, features, len(chunk))
                      if numeric and chunk.csv is not None else None)
            if parsed is not None:
                chunks[chunk.index] = replace(chunk, csv="")  # the text is not needed again
                yield Work(chunk.index, [], True, width=len(features), f64=parsed,
                           size=len(chunk))
                continue
            if chunk.csv is not None:
                yield Work(chunk.index, [], True, csv=chunk.csv, width=len(table.header),
                           features=tuple(map(table.header.index, features)),
                           keep=tuple(map(table.header.index, options.keep)))  # fmt: skip
                continue
            rows = chunk.select(features)
            if chunk.bad:
                rows = [r for i, r in enumerate(rows) if i not in chunk.bad]
            yield Work(chunk.index, rows, chunk.text)

    stopped = None
    for item, scored in engine.map(work()):
        chunk = chunks.pop(item.key)
        began = time.perf_counter()
        scored = with_unreadable(scored, len(chunk), chunk.bad)
        if chunk.csv is not None:  # (arrays are sent only when nothing is kept)
            kept = {table.header[j]: values for j, values in scored.kept.items()}
        else:
            kept = {name: chunk.column(name) for name in options.keep}
        record = output.write(chunk, scored, kept=kept, seconds=time.perf_counter() - began)
        counts["partitions"] += 1
        _add(counts, record)
        if progress is not None:  # (the reading runs ahead of the writing)
            fraction = table.fraction_read()
            progress(counts["rows"], total,
                     fraction and fraction * counts["partitions"] / read[0])
        if options.max_errors is not None and counts["errors"] > options.max_errors:
            stopped = f"more than {options.max_errors} rows failed"
            break
    errors_file = output.gather_errors(read[0])
    if stopped is None:
        output.succeed(dict(counts, seconds=round(time.perf_counter() - started, 3)))
    return BatchSummary(
        input=table.url, output=output.url, engine=options.engine, workers=engine.started,
        seconds=time.perf_counter() - started, errors_file=errors_file, stopped=stopped,
        **counts,
    )  # fmt: skip


def _add(counts: dict[str, int], record: dict[str, Any]) -> None:
    for key in ("rows", "predictions", "errors"):
        counts[key] += int(record[key])


__all__ = ["ENGINES", "BatchError", "BatchOptions", "BatchSummary", "run_batch"]
