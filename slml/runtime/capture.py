"""Captured traffic: a sample of prediction requests written to a sink, off the hot path.

``Capture.offer(...)`` is called once per successful prediction from the event loop: it
draws the sample and puts a tuple on a bounded queue (``put_nowait``), nothing else. A
daemon thread turns queued tuples into JSON lines and hands them to the sink in batches
(at most ``batch`` records or ``flush_seconds`` apart). A full queue or a failing sink
never delays or fails a request: the records are dropped and counted
(``slml_capture_dropped_total`` on /metrics).

One record per line: ``{"request_id", "model", "version", "time" (UTC ISO 8601),
"latency_ms", "inputs", "outputs"}`` (``outputs`` left out with ``inputs_only``; JSON
bodies are stored parsed, CSV bodies as text).

The runtime reads its settings from ``SLML_CAPTURE``, a JSON object
``{"sample", "inputs_only", "sink", "max_file_mb", "batch", "flush_seconds"}`` that the
deployer sets from slml.yaml's ``capture:`` section. Sinks are URLs, see
slml/runtime/capture_sinks.py.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

ENV_VAR = "SLML_CAPTURE"
DEFAULT_QUEUE = 10_000
DEFAULT_BATCH = 500
DEFAULT_FLUSH_SECONDS = 2.0


class Sink(Protocol):
    """Where batches of JSON lines go. ``write`` may block or raise: it runs on the
    capture thread, and a raise drops that batch (counted)."""

    def write(self, lines: list[bytes]) -> None: ...

    def renew(self) -> None:
        """Start new files or object names (after a SnapStart restore)."""


class Capture:
    """The sampler, the bounded queue and the writer thread for one served version."""

    def __init__(
        self,
        sink: Sink,
        *,
        model: str,
        version: str,
        sample: float = 1.0,
        inputs_only: bool = False,
        queue_size: int = DEFAULT_QUEUE,
        batch: int = DEFAULT_BATCH,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        draw: Callable[[], float] = random.random,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.sink, self.model, self.version = sink, model, version
        self.sample, self.inputs_only = sample, inputs_only
        self.batch, self.flush_seconds = batch, flush_seconds
        self.draw, self.on_error = draw, on_error
        self.queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=queue_size)
        self.dropped_full = 0  # bumped by the event loop only
        self.dropped_sink = 0  # bumped by the writer thread only
        self.written = 0  # ditto
        self._thread = threading.Thread(target=self._loop, name="slml-capture", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_sink

    def offer(
        self, request_id: str, latency_s: float, body: bytes, is_csv: bool, out: dict[str, Any]
    ) -> None:
        """Maybe capture this request (never blocks, never raises)."""
        if self.sample < 1.0 and self.draw() >= self.sample:
            return
        try:
            self.queue.put_nowait((request_id, time.time(), latency_s, body, is_csv, out))
        except queue.Full:
            self.dropped_full += 1

    def after_restore(self) -> None:
        """A SnapStart restore: this environment is one of many copies of the snapshot,
        so the sink starts names of its own."""
        self.sink.renew()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the thread (waits up to ``timeout`` seconds)."""
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _loop(self) -> None:
        pending: list[bytes] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = ()
            if item:
                pending.append(self._line(item))
            due = item is None or len(pending) >= self.batch or time.monotonic() >= deadline
            if pending and due:
                self._flush(pending)
                pending = []
            if time.monotonic() >= deadline:
                deadline = time.monotonic() + self.flush_seconds
            if item is None:
                return

    def _flush(self, lines: list[bytes]) -> None:
        try:
            self.sink.write(lines)
        except Exception as exc:  # a sink that is down costs records, never requests
            self.dropped_sink += len(lines)
            if self.on_error is not None:
                self.on_error(exc)
        else:
            self.written += len(lines)

    def _line(self, item: tuple[Any, ...]) -> bytes:
        rid, at, latency_s, body, is_csv, out = item
        record: dict[str, Any] = {
            "request_id": rid,
            "model": self.model,
            "version": self.version,
            "time": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "latency_ms": round(latency_s * 1000, 3),
            "inputs": _inputs(body, is_csv),
        }
        if not self.inputs_only:
            record["outputs"] = out.get("predictions")
        return json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"


def _inputs(body: bytes, is_csv: bool) -> Any:
    text = body.decode("utf-8", "replace")
    if is_csv:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def from_env(
    model: str, version: str, *, on_error: Callable[[BaseException], None] | None = None
) -> Capture | None:
    """The Capture ``SLML_CAPTURE`` asks for, None when it is unset. Raises ValueError
    on a malformed value (the app refuses to start rather than silently not capture)."""
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
        sample = float(cfg.get("sample", 1.0))
        url = str(cfg["sink"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{ENV_VAR} is not a capture setting ({exc}): {raw[:200]!r}") from None
    if not 0.0 <= sample <= 1.0:
        raise ValueError(f"{ENV_VAR}: sample {sample} is not between 0 and 1")
    from slml.runtime.capture_sinks import open_sink

    max_bytes = int(float(cfg.get("max_file_mb", 64)) * 2**20)
    sink = open_sink(url, version=version, max_file_bytes=max_bytes)
    return Capture(
        sink,
        model=model,
        version=version,
        sample=sample,
        inputs_only=bool(cfg.get("inputs_only", False)),
        batch=int(cfg.get("batch", DEFAULT_BATCH)),
        flush_seconds=float(cfg.get("flush_seconds", DEFAULT_FLUSH_SECONDS)),
        on_error=on_error,
    )
