"""Structured logs: one JSON object per line on stderr, through ``logging``.

The logger is ``slml.runtime``. Each record's message is already a JSON object (built
by ``log_event``), so any handler can forward it as is (CloudWatch, Cloud Logging and
Azure parse JSON lines). Each line has ``level`` (lower case) and ``severity`` (upper
case, the key Cloud Logging reads, so errors show as errors there).

Repeated errors are rate-limited (``RateLimiter``): ``log_event(..., limit=key)`` drops
a line over the limit and the next line logged for that key says how many were
``suppressed``; ``RateLimitFilter`` does the same for other libraries' loggers
(asyncio's accept() errors when descriptors run out, uvicorn's bad-request warnings).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from slml.runtime.jsonio import dumps as _dumps

LOGGER_NAME = "slml.runtime"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time (test capture, redirection)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        del value


def emit(event: dict[str, Any], stream: TextIO | None = None) -> None:
    """Print one JSON line to stdout (or ``stream``) with a single write, newline
    included. ``print`` writes the text and its newline separately, so under
    ``PYTHONUNBUFFERED`` another thread's log line could land between them on the shared
    pipe and glue itself onto this one; the deployer reads these lines to follow a
    server's start (``ready``, ``promoted``)."""
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(event) + "\n")
    out.flush()


def _stderr_handler() -> _StderrHandler:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def get_logger() -> logging.Logger:
    """The runtime's logger, with a stderr JSON-line handler unless one is configured."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.addHandler(_stderr_handler())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the JSON line once, not again through the root logger
    return logger


class RateLimiter:
    """At most ``burst`` events per key in each ``window`` seconds. Not thread-safe
    (the serving runtime logs these from its event loop)."""

    MAX_KEYS = 1024

    def __init__(
        self, burst: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst, self.window, self._clock = burst, window, clock
        self._state: dict[str, tuple[float, int, int]] = {}  # key: (start, count, dropped)

    def check(self, key: str) -> int | None:
        """None to drop this event; else log it, and the int says how many events of
        this key were dropped since the last one let through."""
        now = self._clock()
        start, count, dropped = self._state.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.burst:
            self._state[key] = (start, count, dropped + 1)
            return None
        if len(self._state) >= self.MAX_KEYS and key not in self._state:
            self._state.clear()
        self._state[key] = (start, count + 1, 0)
        return dropped


_LIMITER = RateLimiter()


class LineWriter:
    """The serving runtime's log lines, written to stderr by one thread in batches.

    The event loop only appends a finished line to a queue (about a microsecond); the
    thread takes every line queued so far and writes them with one ``write`` and one
    ``flush``. Under load that is one system call (and one wake-up of whatever reads
    the pipe) per batch instead of per request, and no LogRecord, formatter or handler
    call per request line: at concurrency 8 the per-line path cost a quarter of the
    server's throughput. ``install`` routes the runtime logger through it (its other
    records too, formatted, so their order is kept); ``stop`` writes what is queued."""

    MAX_BATCH = 512

    def __init__(self, stream: Callable[[], TextIO] = lambda: sys.stderr) -> None:
        import queue
        import threading

        self._stream = stream
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.put = self._queue.put  # the event loop's whole cost per line
        self._thread = threading.Thread(target=self._run, name="slml-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        get, empty = self._queue.get, self._queue.empty
        while True:
            line = get()
            batch: list[str] = []
            while line is not None:
                batch.append(line)
                if len(batch) >= self.MAX_BATCH or empty():
                    break
                line = get()
            if batch:
                try:
                    stream = self._stream()
                    stream.write("\n".join(batch) + "\n")
                    stream.flush()
                except (OSError, ValueError):  # stderr gone: drop the lines, keep draining
                    pass
            if line is None:
                return

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


class _WriterHandler(logging.Handler):
    """A logging handler that hands the formatted message to a LineWriter."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.put(self.format(record))
        except Exception:  # a log line never fails a request
            self.handleError(record)


_WRITER: LineWriter | None = None  # set by install(): request lines skip logging's path


def install_line_writer(logger: logging.Logger) -> LineWriter | None:
    """Route ``logger`` (the runtime's, with only its default stderr handler) through a
    LineWriter; returns it (``stop()`` it at exit), or None when the logger has other
    handlers (a host application's logging config stays as it is)."""
    global _WRITER
    if not logger.handlers or not all(isinstance(h, _StderrHandler) for h in logger.handlers):
        return None
    writer = LineWriter()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_WriterHandler(writer))
    _WRITER = writer
    return writer


def uninstall_line_writer(logger: logging.Logger, writer: LineWriter) -> None:
    """Stop ``writer`` (writing what is queued) and give ``logger`` back its stderr
    handler."""
    global _WRITER
    _WRITER = None
    writer.stop()
    for handler in [h for h in logger.handlers if isinstance(h, _WriterHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(_stderr_handler())


def log_event(
    logger: logging.Logger, level: int, event: str, *, limit: str | None = None, **fields: Any
) -> None:
    """Log ``{"ts", "level", "severity", "event", **fields}`` as one JSON line. With
    ``limit``, the line is rate-limited under that key (see ``RateLimiter``)."""
    if not logger.isEnabledFor(level):
        return
    if limit is not None:
        dropped = _LIMITER.check(limit)
        if dropped is None:
            return
        if dropped:
            fields["suppressed"] = dropped
    name = logging.getLevelName(level)
    record = {
        "ts": round(time.time(), 3),
        "level": name.lower(),
        "severity": name,
        "event": event,
        **fields,
    }
    line = _dumps(record, finite=True).decode()  # orjson where installed (NaN as null)
    writer = _WRITER
    if writer is not None and level < logging.WARNING and logger.name == LOGGER_NAME:
        writer.put(line)  # no filter applies below WARNING (RateLimitFilter)
        return
    logger.log(level, line)


class RateLimitFilter(logging.Filter):
    """A logging filter: records at WARNING and above are rate-limited per message
    template; one let through after drops says how many were suppressed."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        super().__init__()
        self.limiter = limiter or RateLimiter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        dropped = self.limiter.check(f"{record.name}:{str(record.msg)[:200]}")
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.msg} [{dropped} similar messages suppressed]"
        return True


def rate_limit_loggers(*names: str) -> None:
    """Add a ``RateLimitFilter`` to each named logger (once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitFilter) for f in logger.filters):
            logger.addFilter(RateLimitFilter())
