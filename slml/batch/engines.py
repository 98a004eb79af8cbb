"""Where partitions are scored: worker processes here, Ray actors, or Spark tasks.

The engines take the same partitions and return ``Scored`` results computed by the same
function (``slml.runtime.batch.score``), so their output is identical. At most
``2 x workers`` partitions are in flight, which bounds memory whatever the input's size.
Results come back in completion order.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import IO, Any, Protocol

from slml.runtime.batch import Scored

WORKER_MODULE = "slml.runtime.batch"


class EngineError(RuntimeError):
    """An engine could not start or lost a worker."""


@dataclass(frozen=True)
class Work:
    """One partition's rows for the model (unreadable rows already taken out)."""

    key: int
    rows: list[Any]
    text: bool
    csv: str | None = None  # instead of rows: CSV lines, parsed by the worker
    width: int = 0
    features: tuple[int, ...] = ()
    keep: tuple[int, ...] = ()
    f64: bytes | None = None  # instead of rows: ``width`` float64 columns of ``size`` rows
    size: int = 0

    def frame(self) -> dict[str, Any]:
        if self.f64 is not None:
            return {"id": self.key, "f64": self.f64, "size": self.size, "width": self.width}
        if self.csv is None:
            return {"id": self.key, "rows": self.rows, "text": self.text}
        return {"id": self.key, "csv": self.csv, "width": self.width,
                "features": list(self.features), "keep": list(self.keep)}  # fmt: skip


class Engine(Protocol):
    workers: int  # the most processes or actors it runs
    takes_arrays: bool  # Work with ``f64`` (bytes) reaches its workers

    @property
    def started(self) -> int:
        """How many it started so far."""
        ...

    def map(self, work: Iterable[Work]) -> Iterator[tuple[Work, Scored]]: ...

    def close(self) -> None: ...


def bounded(submit: Callable[[Work], Future[Scored]], work: Iterable[Work], limit: int
            ) -> Iterator[tuple[Work, Scored]]:
    """Submit ``work`` with at most ``limit`` items pending; yield results as they finish."""
    pending: dict[Future[Scored], Work] = {}
    for item in work:
        pending[submit(item)] = item
        while len(pending) >= limit:
            yield from _collect(pending)
    while pending:
        yield from _collect(pending)


def _collect(pending: dict[Future[Scored], Work]) -> Iterator[tuple[Work, Scored]]:
    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in finished:
        item = pending.pop(future)
        yield item, future.result()


class _Worker:
    """One ``python -m slml.runtime.batch`` process in the model's environment.

    Frames go in through a writer thread and answers come back through a reader thread,
    in order, so the next frame is already in the pipe when the process finishes one: it
    never waits for this side to read its answer and send more."""

    def __init__(self, command: list[str], env: Mapping[str, str], log: IO[bytes]) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=dict(env),
            bufsize=1 << 16,
        )
        self.sent: deque[Future[Scored]] = deque()  # answered in this order
        self._failure: EngineError | None = None
        self._lock = threading.Lock()
        self._frames: Queue[tuple[bytes, bytes] | None] = Queue()
        self._threads = [threading.Thread(target=self._write_all, daemon=True),
                         threading.Thread(target=self._read_all, daemon=True)]  # fmt: skip

    def wait_ready(self) -> None:
        """Block until the model is loaded; raises EngineError when it did not load."""
        ready = self._read()
        if not ready.get("ready"):
            raise EngineError(f"the model did not load in its environment: {ready.get('error')}")
        for thread in self._threads:
            thread.start()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise self._exited()
        return json.loads(line)

    def _exited(self) -> EngineError:
        code = self.proc.wait()
        self.log.flush()
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
        return EngineError(f"a batch worker exited (code {code}): " + " | ".join(tail))

    def submit(self, item: Work) -> Future[Scored]:
        """Queue ``item`` for this process; its answer arrives in the future."""
        future: Future[Scored] = Future()
        with self._lock:
            if self._failure is not None:  # the process is gone
                future.set_exception(self._failure)
                return future
            self.sent.append(future)
        self._frames.put(frame_bytes(item))
        return future

    def _write_all(self) -> None:
        assert self.proc.stdin is not None
        while (frame := self._frames.get()) is not None:
            try:
                for part in frame:
                    self.proc.stdin.write(part)
                self.proc.stdin.flush()
            except OSError:  # the process is gone: the reader reports why
                return

    def _read_all(self) -> None:
        while True:
            try:
                answer = self._read()
            except (EngineError, ValueError) as exc:
                failure = exc if isinstance(exc, EngineError) else EngineError(
                    f"a batch worker answered what is not JSON: {exc}")
                with self._lock:
                    self._failure = failure
                    pending, self.sent = list(self.sent), deque()
                for future in pending:
                    future.set_exception(failure)
                return
            with self._lock:
                future = self.sent.popleft()
            future.set_result(Scored.from_dict(answer))

    def close(self) -> None:
        self._frames.put(None)
        started = self._threads[0].ident is not None
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                if started:
                    self._threads[0].join(timeout=10)
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if started:
            self._threads[1].join(timeout=10)
        self.log.close()


def frame_bytes(item: Work) -> tuple[bytes, bytes]:
    """The worker protocol's bytes for ``item``: a JSON header line, and for CSV lines
    the text itself after it (``csv_bytes`` long), sent as it is, not as a JSON string."""
    frame = item.frame()
    if item.f64 is not None:
        data = frame.pop("f64")
        return json.dumps({**frame, "f64_bytes": len(data)}).encode() + b"\n", data
    if item.csv is None:
        return json.dumps(frame, allow_nan=False).encode() + b"\n", b""
    text = frame.pop("csv").encode()
    return json.dumps({**frame, "csv_bytes": len(text)}).encode() + b"\n", text


class LocalEngine:
    """``workers`` processes of the model's own environment (``python`` with the bundle's
    runtime on PYTHONPATH), each loading the artifact once and holding up to two
    partitions: one being scored, the next waiting in its pipe.

    The first process is started alone; each further one only once the processes running
    fall behind, i.e. a partition arrives while every one of them already holds two.
    Started together, they would share the cores while loading the model and all be
    ready later than the first is alone; and a job bound by reading and writing (the
    parent's side) never pays for a model load it could not use. ``workers`` is the
    most processes it starts; ``started`` says how many it did."""

    takes_arrays = True

    def __init__(self, *, python: Path, app_dir: Path, model_dir: Path, workers: int,
                 environ: Mapping[str, str] | None = None,
                 meanwhile: Callable[[], None] | None = None) -> None:
        """Start the first process; ``meanwhile`` runs here while it loads the model."""
        env = {k: v for k, v in (os.environ if environ is None else environ).items()
               if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}  # fmt: skip
        # PYTHONSAFEPATH: ``-m`` would put the working directory first on sys.path, and a
        # ``slml`` folder there would shadow the bundle's runtime
        env |= {"PYTHONPATH": str(app_dir), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
                "PYTHONSAFEPATH": "1"}
        self._command = [str(python), "-m", WORKER_MODULE, str(model_dir)]
        self._env = env
        self.workers = max(1, workers)
        self._all: list[_Worker] = []
        self._ready: list[_Worker] = []
        self._lock = threading.Lock()
        self._late_failure: EngineError | None = None
        self._closing = False
        self._wanted = threading.Event()  # set when the running processes fall behind
        try:
            first = self._spawn()
            if meanwhile is not None:
                meanwhile()
            first.wait_ready()
        except BaseException:
            self.close()
            raise
        self._ready.append(first)
        self._joiner = threading.Thread(target=self._start_the_rest, daemon=True)
        self._joiner.start()

    def _spawn(self) -> _Worker:
        """A new process, unless the engine is closing (then EngineError): under the lock,
        so ``close`` sees every process there is."""
        with self._lock:
            if self._closing:
                raise EngineError("the engine is closing")
            log = tempfile.TemporaryFile()  # noqa: SIM115 - the worker closes it
            try:
                worker = _Worker(self._command, self._env, log)
            except OSError as exc:
                log.close()
                raise EngineError(f"a batch worker did not start: {exc}") from None
            self._all.append(worker)
        return worker

    @property
    def started(self) -> int:
        """How many processes were started (at most ``workers``)."""
        return len(self._all)

    def _start_the_rest(self) -> None:
        for _ in range(self.workers - 1):
            self._wanted.wait()
            self._wanted.clear()
            try:
                worker = self._spawn()
                worker.wait_ready()
            except EngineError as exc:
                if not self._closing:
                    self._late_failure = exc
                return
            with self._lock:
                self._ready.append(worker)

    def _submit(self, item: Work) -> Future[Scored]:
        """To the ready process with the fewest partitions in hand."""
        if self._late_failure is not None:
            raise self._late_failure
        with self._lock:
            worker = min(self._ready, key=lambda w: len(w.sent))
            if len(worker.sent) >= 2 and len(self._all) < self.workers:
                self._wanted.set()  # every running process holds two already: behind
        return worker.submit(item)

    def map(self, work: Iterable[Work]) -> Iterator[tuple[Work, Scored]]:
        yield from bounded(self._submit, work, 2 * self.workers)

    def close(self) -> None:
        with self._lock:  # from here on no process is started
            self._closing = True
            loading = [w for w in self._all if w not in self._ready]
        self._wanted.set()  # wakes the starter, which then finds the engine closing
        for worker in loading:  # still loading the model: not needed any more
            worker.proc.kill()
        joiner = getattr(self, "_joiner", None)
        if joiner is not None:
            joiner.join(timeout=30)
        for worker in self._all:
            worker.close()


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
