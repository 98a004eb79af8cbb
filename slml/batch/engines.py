"""Where partitions are scored: worker processes here (``slml.batch.workers``), Ray
actors, or Spark tasks.

The engines take the same partitions (``slml.batch.work.Work``) and return ``Scored``
results computed by the same function (``slml.runtime.batch.score``), so their output is
identical. A bounded number of partitions is in flight, which bounds memory whatever the
input's size. Results come back in completion order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from slml.batch.work import Engine, EngineError, EngineStartError, Work, bounded, frame_bytes
from slml.batch.workers import WORKER_MODULE, LocalEngine
from slml.runtime.batch import Scored


class RayEngine:
    """Ray actors, each loading the artifact once (``ray.init(address)``: an existing
    cluster, or a local instance with ``workers`` CPUs when no address is given). The
    actors run in the cluster's Python environment, which must hold the model's
    requirements (as for any Ray job)."""

    takes_arrays = True

    def __init__(self, *, model_dir: Path, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EngineError("--engine ray needs Ray: pip install 'slml[batch]'") from None
        self._ray = ray
        self.workers = max(1, workers)
        self.started = self.workers  # all at once
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}  # fmt: skip
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=self.workers, **options)
            self._owns = True
        else:
            self._owns = False
        actor = ray.remote(num_cpus=1)(_RayScorer)
        self._actors = [actor.remote(str(model_dir)) for _ in range(self.workers)]
        try:
            ray.get([a.ready.remote() for a in self._actors])
        except Exception as exc:
            self.close()
            raise EngineError(f"the model did not load in a Ray actor: {exc}") from None

    def map(self, work: Iterable[Work]) -> Iterator[tuple[Work, Scored]]:
        idle = list(self._actors)
        pending: dict[Any, tuple[Work, Any]] = {}
        for item in work:
            if not idle:
                yield from self._collect(pending, idle)
            actor = idle.pop()
            pending[actor.score.remote(item.frame())] = (item, actor)
        while pending:
            yield from self._collect(pending, idle)

    def _collect(self, pending: dict[Any, tuple[Work, Any]], idle: list[Any]
                 ) -> Iterator[tuple[Work, Scored]]:
        done, _ = self._ray.wait(list(pending), num_returns=1)
        for ref in done:
            item, actor = pending.pop(ref)
            idle.append(actor)
            yield item, Scored.from_dict(self._ray.get(ref))

    def close(self) -> None:
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        if getattr(self, "_owns", False):
            self._ray.shutdown()


class _RayScorer:
    """A Ray actor: the artifact loaded once, partitions scored by the shared function."""

    def __init__(self, model_dir: str) -> None:
        from slml.runtime.loader import load

        self.model = load(model_dir)

    def ready(self) -> bool:
        return True

    def score(self, frame: dict[str, Any]) -> dict[str, Any]:
        from slml.runtime.batch import score_frame

        return score_frame(self.model, frame).as_dict()


class SparkEngine:
    """Spark: each wave of partitions becomes a small DataFrame (one row per partition,
    its frame as JSON) scored with ``mapInArrow``, by Python workers that load the
    artifact once each and keep it (Spark reuses its Python workers). ``address`` is a
    master URL (``spark://host:7077``, ``yarn``, ``local[4]``); without one, a local
    master with ``workers`` cores on 127.0.0.1. As for Ray, the executors' Python must
    hold slml and the model's requirements."""

    takes_arrays = False  # frames travel as JSON

    SCHEMA = "id long, result string"

    def __init__(self, *, model_dir: Path, workers: int, address: str | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineError("--engine spark needs PySpark: pip install 'slml[spark]' "
                              "(and Java 17+)") from None
        import sys

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # read when Spark starts
        self.workers = max(1, workers)
        self.started = self.workers  # all at once
        self._model_dir = str(model_dir)
        builder = (SparkSession.builder.appName("slml-batch")
                   .master(address or f"local[{self.workers}]")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.pyspark.python", sys.executable)
                   .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1"))
        if address is None or address.startswith("local"):  # loopback only, no LAN address
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = (builder.config("spark.driver.host", "127.0.0.1")
                       .config("spark.driver.bindAddress", "127.0.0.1"))
        try:
            self._spark = builder.getOrCreate()
        except Exception as exc:  # Java missing, master unreachable: py4j says which
            raise EngineError(f"Spark did not start: {_spark_reason(exc)}") from None
        self._spark.sparkContext.setLogLevel("ERROR")

    def map(self, work: Iterable[Work]) -> Iterator[tuple[Work, Scored]]:
        wave: list[Work] = []
        for item in work:
            wave.append(item)
            if len(wave) >= 2 * self.workers:
                yield from self._score(wave)
                wave = []
        if wave:
            yield from self._score(wave)

    def _score(self, wave: list[Work]) -> Iterator[tuple[Work, Scored]]:
        frames = [(w.key, json.dumps(w.frame(), allow_nan=False)) for w in wave]
        frame = self._spark.createDataFrame(frames, self.SCHEMA).repartition(len(wave))
        scorer = _arrow_scorer(self._model_dir)
        try:
            rows = frame.mapInArrow(scorer, self.SCHEMA).collect()
        except Exception as exc:
            raise EngineError(f"a Spark task failed: {_spark_reason(exc)}") from None
        by_key = {w.key: w for w in wave}
        for row in rows:
            yield by_key[row["id"]], Scored.from_dict(json.loads(row["result"]))

    def close(self) -> None:
        if hasattr(self, "_spark"):
            self._spark.stop()


def _spark_reason(exc: Exception) -> str:
    """The Python error inside a Spark/py4j error's Java stack trace, else its first line."""
    import re

    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:300]


_SPARK_MODELS: dict[str, Any] = {}  # in a Spark Python worker: model_dir -> loaded model


def _arrow_scorer(model_dir: str) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The ``mapInArrow`` function: Arrow batches of (id, frame JSON) → (id, Scored JSON)."""

    def score_batches(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        from slml.batch import engines  # the worker's module, so the cache outlives a task
        from slml.runtime.batch import score_frame
        from slml.runtime.loader import load

        cache = engines._SPARK_MODELS
        model = cache.get(model_dir)
        if model is None:
            model = cache[model_dir] = load(model_dir)
        for batch in batches:  # columns by position: (id, frame)
            ids, frames = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            results = [json.dumps(score_frame(model, json.loads(f)).as_dict(), allow_nan=False)
                       for f in frames]  # fmt: skip
            yield pa.RecordBatch.from_pydict({"id": ids, "result": results})

    return score_batches


__all__ = ["WORKER_MODULE", "Engine", "EngineError", "EngineStartError", "LocalEngine",
           "RayEngine", "SparkEngine", "Work", "bounded", "frame_bytes"]
