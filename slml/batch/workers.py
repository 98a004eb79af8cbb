"""``--engine local``: processes of the model's own environment, fed through pipes.

The first process is started at once and the parent reads ahead while it loads the
model (up to ``READ_AHEAD_BYTES`` of partitions), so that the load, most of a short
run's time, is not followed by the reading but overlaps it. After that at most
``2 x workers`` partitions are in flight. Further processes start only when they pay
for their start (``slml.batch.pace``), as measured on the run itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from itertools import chain
from pathlib import Path
from queue import Queue
from typing import IO, Any

from slml.batch.pace import Pace
from slml.batch.work import EngineError, EngineStartError, Work, bounded, frame_bytes
from slml.runtime.batch import Scored

WORKER_MODULE = "slml.runtime.batch_worker"
READ_AHEAD_BYTES = 32 << 20  # partitions read while the first process loads, at most
PIPE_BYTES = 1 << 20


class _Worker:
    """One ``python -m slml.runtime.batch_worker`` process in the model's environment.

    Frames go in through a writer thread and answers come back through a reader thread,
    in order, so the next frame is already in the pipe when the process finishes one: it
    never waits for this side to read its answer and send more. ``ready`` is set once
    the process said whether it loaded the model (``failure`` says if it did not)."""

    def __init__(self, command: list[str], env: Mapping[str, str], log: IO[bytes], *,
                 pace: Pace, on_ready: Callable[[_Worker], None]) -> None:
        self.log = log
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=dict(env),
            bufsize=1 << 16,
        )
        _widen(self.proc.stdin, self.proc.stdout)
        self.sent: deque[tuple[Future[Scored], float]] = deque()  # answered in this order
        self.ready = threading.Event()
        self.failure: EngineError | None = None
        self._pace = pace
        self._on_ready = on_ready
        self._free_since = 0.0  # when it answered last: since then it works on the next
        self._lock = threading.Lock()
        self._frames: Queue[tuple[bytes, bytes] | None] = Queue()
        self._threads = [threading.Thread(target=self._write_all, daemon=True),
                         threading.Thread(target=self._read_all, daemon=True)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    @property
    def loaded(self) -> bool:
        return self.ready.is_set() and self.failure is None

    def wait_ready(self) -> None:
        """Block until the model is loaded; raises EngineStartError when it did not load."""
        self.ready.wait()
        if self.failure is not None:
            raise self.failure

    def submit(self, item: Work) -> Future[Scored]:
        """Queue ``item`` for this process; its answer arrives in the future."""
        future: Future[Scored] = Future()
        with self._lock:
            if self.failure is not None:  # the process is gone
                future.set_exception(self.failure)
                return future
            self.sent.append((future, time.perf_counter()))
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
        try:
            hello = self._read()
        except (EngineError, ValueError) as exc:
            hello = {"ready": False, "error": str(exc)}
        if not hello.get("ready"):
            self._fail(EngineStartError(
                f"the model did not load in its environment: {hello.get('error')}"))
        self._free_since = time.perf_counter()
        self._on_ready(self)
        self.ready.set()
        if self.failure is not None:
            return
        while True:
            try:
                scored = self._answer()
            except (EngineError, ValueError) as exc:
                self._fail(exc if isinstance(exc, EngineError) else EngineError(
                    f"a batch worker answered what is not JSON: {exc}"))
                return
            now = time.perf_counter()
            with self._lock:
                future, sent = self.sent.popleft()
            self._pace.scored(now - max(sent, self._free_since))
            self._free_since = now
            future.set_result(scored)

    def _fail(self, failure: EngineError) -> None:
        with self._lock:
            self.failure = failure
            pending, self.sent = list(self.sent), deque()
        for future, _ in pending:
            future.set_exception(failure)

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise self._exited()
        return dict(json.loads(line))

    def _answer(self) -> Scored:
        """The next answer; predictions sent as an array come after its line."""
        answer = self._read()
        size = answer.pop("array_bytes", None)
        scored = Scored.from_dict(answer)
        if size is not None:
            assert self.proc.stdout is not None
            data = self.proc.stdout.read(size)
            if len(data) != size:
                raise self._exited()
            scored.array = (answer["dtype"], answer["shape"], data)
        return scored

    def _exited(self) -> EngineError:
        code = self.proc.wait()
        self.log.flush()
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
        return EngineError(f"a batch worker exited (code {code}): " + " | ".join(tail))

    def close(self) -> None:
        self._frames.put(None)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self._threads[0].join(timeout=10)
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._threads[1].join(timeout=10)
        self.log.close()


def _widen(*pipes: IO[bytes] | None) -> None:
    """Give ``pipes`` a 1 MiB buffer (Linux; 64 KiB by default), so that a partition
    of megabytes crosses in a few writes instead of a few dozen wake-ups each way."""
    import fcntl

    size = getattr(fcntl, "F_SETPIPE_SZ", None)
    for pipe in pipes:
        if size is None or pipe is None:
            return
        try:
            fcntl.fcntl(pipe.fileno(), size, PIPE_BYTES)
        except OSError:  # above /proc/sys/fs/pipe-max-size: the default stays
            return


class LocalEngine:
    """``workers`` processes of the model's own environment (``python`` with the bundle's
    runtime on PYTHONPATH), each loading the artifact once and holding up to two
    partitions: one being scored, the next waiting in its pipe.

    The first process starts at once; each further one only when it pays for its start
    (``slml.batch.pace``): a run bound by the parent's reading and writing, or too short
    for a second model load to end it sooner, runs on one. ``workers`` is the most
    processes it starts; ``started`` says how many it did. ``unread`` estimates how many
    partitions the input holds that were not read yet (None: not known)."""

    takes_arrays = True

    def __init__(self, *, python: Path, app_dir: Path, model_dir: Path, workers: int,
                 environ: Mapping[str, str] | None = None,
                 meanwhile: Callable[[], None] | None = None,
                 unread: Callable[[], float | None] | None = None) -> None:
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
        self.pace = Pace()
        self._unread = unread or (lambda: None)
        self._all: list[_Worker] = []
        self._ready: list[_Worker] = []
        self._lock = threading.Lock()
        self._closing = False
        self._late_failure: EngineError | None = None
        try:
            self._first = self._spawn()
            if meanwhile is not None:
                meanwhile()
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> _Worker:
        """A new process, unless the engine is closing (then EngineError): under the lock,
        so ``close`` sees every process there is."""
        with self._lock:
            if self._closing:
                raise EngineError("the engine is closing")
            log = tempfile.TemporaryFile()  # noqa: SIM115 - the worker closes it
            try:
                worker = _Worker(self._command, self._env, log, pace=self.pace,
                                 on_ready=self._joined)
            except OSError as exc:
                log.close()
                raise EngineStartError(f"a batch worker did not start: {exc}") from None
            self._all.append(worker)
        return worker

    def _joined(self, worker: _Worker) -> None:
        """``worker`` loaded the model, or failed to (called on its reader thread)."""
        with self._lock:
            if worker.failure is not None:
                if worker is not self._all[0]:  # the first one's failure ends map() itself
                    self._late_failure = EngineError(str(worker.failure))  # mid-run
                return
            if self.pace.load is None:
                self.pace.load = time.perf_counter() - worker.spawned
            self._ready.append(worker)

    @property
    def started(self) -> int:
        """How many processes were started (at most ``workers``)."""
        return len(self._all)

    def _submit(self, item: Work) -> Future[Scored]:
        """To the ready process with the fewest partitions in hand."""
        if self._late_failure is not None and not self._closing:
            raise self._late_failure
        with self._lock:
            worker = min(self._ready, key=lambda w: len(w.sent))
        return worker.submit(item)

    def map(self, work: Iterable[Work]) -> Iterator[tuple[Work, Scored]]:
        items = self._timed(work)
        ahead, ended = self._read_ahead(items)
        if ended and not ahead:  # nothing to score (a rerun of a finished job): no wait
            return
        self._first.wait_ready()
        results = bounded(self._submit, chain(ahead, items), 2 * self.workers)
        for answered, (item, scored) in enumerate(results, 1):
            began = time.perf_counter()
            yield item, scored
            self.pace.took_to_write(time.perf_counter() - began)
            unread = self._unread()
            self._grow(None if unread is None else unread + self.pace.reads - answered)

    def _timed(self, work: Iterable[Work]) -> Iterator[Work]:
        """``work``, the parent's time to read each item told to ``pace``."""
        items = iter(work)
        while True:
            began = time.perf_counter()
            item = next(items, None)
            if item is None:
                return
            self.pace.took_to_read(time.perf_counter() - began)
            yield item

    def _read_ahead(self, items: Iterator[Work]) -> tuple[list[Work], bool]:
        """Partitions read while the first process loads the model (a bounded amount),
        and whether they are all there are."""
        ahead: list[Work] = []
        held = 0
        while not self._first.ready.is_set() and held < READ_AHEAD_BYTES:
            item = next(items, None)
            if item is None:
                return ahead, True
            ahead.append(item)
            held += item.nbytes
        return ahead, False

    def _grow(self, left: float | None) -> None:
        """Start one more process when it pays for its start, one loading at a time."""
        with self._lock:
            running = len(self._ready)
            loading = any(not w.ready.is_set() for w in self._all)
        if loading or len(self._all) >= self.workers or self._closing:
            return
        if self.pace.worth_one_more(running, left):
            try:
                self._spawn()
            except EngineError:
                return  # closing, or it cannot start: the running ones go on

    def close(self) -> None:
        with self._lock:  # from here on no process is started
            self._closing = True
            loading = [w for w in self._all if not w.ready.is_set()]
        for worker in loading:  # still loading the model: not needed any more
            worker.proc.kill()
        for worker in self._all:
            worker.close()
