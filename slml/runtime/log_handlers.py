"""The runtime's logs through the standard library's ``logging`` (servers).

``std_logger()`` is the ``slml.runtime`` logger with a handler that writes each JSON
line to stderr; ``install_line_writer`` moves a server's lines off its event loop
(``LineWriter``); ``RateLimitFilter`` limits other libraries' repeated warnings
(asyncio's accept() errors when descriptors run out, uvicorn's bad-request warnings).
The lines themselves are built by ``slml.runtime.logs.log_event``, which imports none
of this: the Lambda handler logs through ``logs.LineLogger`` and never imports
``logging`` (3-4 ms of every cold start).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TextIO

from slml.runtime import logs
from slml.runtime.logs import LOGGER_NAME, RateLimiter


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


def _stderr_handler() -> _StderrHandler:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def std_logger() -> logging.Logger:
    """The runtime's logger, with a stderr JSON-line handler unless one is configured."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.addHandler(_stderr_handler())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the JSON line once, not again through the root logger
    return logger


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


def install_line_writer(logger: logging.Logger) -> LineWriter | None:
    """Route ``logger`` (the runtime's, with only its default stderr handler) through a
    LineWriter; returns it (``stop()`` it at exit), or None when the logger has other
    handlers (a host application's logging config stays as it is)."""
    if not logger.handlers or not all(isinstance(h, _StderrHandler) for h in logger.handlers):
        return None
    writer = LineWriter()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_WriterHandler(writer))
    logs.set_line_sink(writer.put)  # request lines skip logging's path
    return writer


def uninstall_line_writer(logger: logging.Logger, writer: LineWriter) -> None:
    """Stop ``writer`` (writing what is queued) and give ``logger`` back its stderr
    handler."""
    logs.set_line_sink(None)
    writer.stop()
    for handler in [h for h in logger.handlers if isinstance(h, _WriterHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(_stderr_handler())


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
