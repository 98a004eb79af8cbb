"""Adaptive micro-batching: concurrent requests' rows predicted in one call.

Opt-in per model (``batching: {max_batch_size, max_latency_ms}`` in slml.yaml, passed
to the runtime as ``SLML_BATCH_MAX_SIZE`` and ``SLML_BATCH_MAX_LATENCY_MS``). Each
request is parsed and validated alone first, so its errors stay its own; only
validated batches (models with an input signature) are merged. Then:

- one merged ``predict`` runs at a time, in a worker thread; rows that arrive while it
  runs queue, and the next call takes all of them (up to ``max_batch_size`` rows), so
  the batch size follows the load by itself;
- with nothing running, a request goes at once when no other request is in the app;
  when others are (they are still being read or parsed), it waits at most
  ``max_latency_ms`` for them to join, and no longer than until ``max_batch_size`` rows
  are queued. One request alone is never delayed;
- predictions are split back by each request's row count. When a merged call fails, each
  request of it is predicted alone, so one bad input gets its own error and the others
  their answers.

Runs on the event loop thread only (not thread-safe by design).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slml.runtime.validation import Batch

if TYPE_CHECKING:  # asyncio is imported when the first request is batched, not before:
    import asyncio  # the Lambda adapter imports this module and never runs an event loop

DEFAULT_MAX_LATENCY_MS = 5.0


def batching_from_env() -> tuple[int, float] | None:
    """``(max_batch_size, max_latency_s)`` from the environment; None when off. Raises
    ValueError on a bad value (the server refuses to start)."""
    raw_size = os.environ.get("SLML_BATCH_MAX_SIZE", "").strip()
    if not raw_size:
        return None
    raw_latency = os.environ.get("SLML_BATCH_MAX_LATENCY_MS", "").strip()
    try:
        size = int(raw_size)
        latency = float(raw_latency) if raw_latency else DEFAULT_MAX_LATENCY_MS
    except ValueError:
        raise ValueError(
            f"SLML_BATCH_MAX_SIZE={raw_size!r} / SLML_BATCH_MAX_LATENCY_MS={raw_latency!r}: "
            "expected a whole number of rows and a number of milliseconds"
        ) from None
    if size < 1 or not 0 <= latency <= 10_000:
        raise ValueError(
            f"SLML_BATCH_MAX_SIZE={raw_size!r} must be at least 1 and "
            f"SLML_BATCH_MAX_LATENCY_MS={raw_latency!r} between 0 and 10000"
        )
    return size, latency / 1000


def merge(batches: list[Batch]) -> Batch:
    """One validated batch holding every row of ``batches``, in order."""
    rows = [row for b in batches for row in b.rows]
    first = batches[0]
    return Batch(rows=rows, raw=rows, key=first.key, validated=True, columns=first.columns,
                 dtype=first.dtype)  # fmt: skip


def split(predictions: list[Any], batches: list[Batch]) -> list[list[Any]]:
    """``predictions`` cut back into one list per batch, by row count."""
    out, start = [], 0
    for b in batches:
        out.append(predictions[start : start + len(b)])
        start += len(b)
    return out


class Batcher:
    """Merges concurrent validated batches into one ``predict`` call."""

    def __init__(
        self, predict: Callable[[Batch], list[Any]], max_size: int, max_latency_s: float
    ) -> None:
        self.predict, self.max_size, self.max_latency_s = predict, max_size, max_latency_s
        self._queue: list[tuple[Batch, asyncio.Future[list[Any]]]] = []
        self._rows = 0
        self._busy = False
        self._timer: asyncio.TimerHandle | None = None
        self.calls = 0  # merged predict calls so far (for tests and logs)

    async def submit(self, batch: Batch, *, waiting: int = 1) -> list[Any]:
        """This batch's predictions. ``waiting``: requests in the app now, this one
        included; more than one means others may join within ``max_latency_s``."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append((batch, future))
        self._rows += len(batch)
        if not self._busy:
            if self._rows >= self.max_size or waiting <= len(self._queue):
                self._start(loop)
            elif self._timer is None:
                self._timer = loop.call_later(self.max_latency_s, self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy or not self._queue:
            return
        taken: list[tuple[Batch, asyncio.Future[list[Any]]]] = []
        rows = 0
        while self._queue and (not taken or rows + len(self._queue[0][0]) <= self.max_size):
            item = self._queue.pop(0)
            taken.append(item)
            rows += len(item[0])
        self._rows -= rows
        self._busy = True
        self.calls += 1
        task = loop.run_in_executor(None, self._run, [b for b, _ in taken])
        task.add_done_callback(lambda done: self._finish(loop, taken, done))

    def _run(self, batches: list[Batch]) -> list[list[Any]] | list[BaseException | list[Any]]:
        """In a worker thread: one call for all, or each alone when that call fails."""
        if len(batches) == 1:
            return [self._one(batches[0])]
        try:
            return split(self.predict(merge(batches)), batches)
        except Exception:  # find whose rows failed: each on its own
            return [self._one(b) for b in batches]

    def _one(self, batch: Batch) -> list[Any] | BaseException:
        try:
            return self.predict(batch)
        except Exception as exc:  # handed to that request's coroutine
            return exc

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        taken: list[tuple[Batch, asyncio.Future[list[Any]]]],
        done: asyncio.Future[Any],
    ) -> None:
        self._busy = False
        error = done.exception()
        results = [error] * len(taken) if error is not None else done.result()
        for (_, future), result in zip(taken, results, strict=True):
            if future.done():  # the request was cancelled (client gone)
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self._queue:  # what queued meanwhile goes now, whatever its size
            self._start(loop)
