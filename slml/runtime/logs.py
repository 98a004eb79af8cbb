"""Structured logs: one JSON object per line on stderr.

The logger is ``slml.runtime``. Each record's message is already a JSON object (built
by ``log_event``), so any handler can forward it as is (CloudWatch, Cloud Logging and
Azure parse JSON lines). Each line has ``level`` (lower case) and ``severity`` (upper
case, the key Cloud Logging reads, so errors show as errors there).

``log_event`` takes any ``Logger``: servers pass the standard library's (``get_logger``;
slml/runtime/log_handlers.py), the Lambda handler a ``LineLogger``, which writes the
same lines to stderr without importing ``logging`` (3-4 ms of every cold start; this
module imports only what ``json`` and the runtime already have).

Repeated errors are rate-limited (``RateLimiter``): ``log_event(..., limit=key)`` drops
a line over the limit and the next line logged for that key says how many were
``suppressed``; ``log_handlers.RateLimitFilter`` does the same for other libraries'
loggers.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from slml.runtime.jsonio import dumps as _dumps

if TYPE_CHECKING:
    import logging

LOGGER_NAME = "slml.runtime"
# the standard library's level numbers, so either kind of logger takes them
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR", CRITICAL: "CRITICAL"}


class Logger(Protocol):
    """What ``log_event`` needs of a logger (``logging.Logger`` has it)."""

    @property
    def name(self) -> str: ...

    def isEnabledFor(self, level: int) -> bool: ...

    def log(self, level: int, msg: str) -> None: ...


class LineLogger:
    """The runtime's lines straight to ``sys.stderr`` (whatever it is at write time),
    one ``write`` per line, newline included, then a flush: what the standard library's
    stream handler does with them, without importing ``logging``. For the Lambda
    handler, whose runtime reads each stderr line as one log event."""

    name = LOGGER_NAME

    def __init__(self, level: int = INFO, stream: Callable[[], TextIO] | None = None) -> None:
        self.level = level
        self._stream = stream or (lambda: sys.stderr)

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.level

    def log(self, level: int, msg: str) -> None:
        if level < self.level:
            return
        try:
            stream = self._stream()
            stream.write(msg + "\n")
            stream.flush()
        except (OSError, ValueError):  # stderr gone: a log line never fails a request
            pass


def get_logger() -> logging.Logger:
    """The runtime's standard-library logger, with a stderr JSON-line handler unless one
    is configured (slml/runtime/log_handlers.py)."""
    from slml.runtime.log_handlers import std_logger

    return std_logger()


def emit(event: dict[str, Any], stream: TextIO | None = None) -> None:
    """Print one JSON line to stdout (or ``stream``) with a single write, newline
    included. ``print`` writes the text and its newline separately, so under
    ``PYTHONUNBUFFERED`` another thread's log line could land between them on the shared
    pipe and glue itself onto this one; the deployer reads these lines to follow a
    server's start (``ready``, ``promoted``)."""
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(event) + "\n")
    out.flush()


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
_SINK: Callable[[str], None] | None = None  # a server's LineWriter: request lines skip logging


def set_line_sink(sink: Callable[[str], None] | None) -> None:
    """Where ``log_event`` puts the runtime logger's lines below WARNING (a LineWriter's
    ``put``; log_handlers.install_line_writer sets it), or None for the logger itself."""
    global _SINK
    _SINK = sink


def log_event(
    logger: Logger, level: int, event: str, *, limit: str | None = None, **fields: Any
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
    name = _NAMES.get(level) or f"Level {level}"
    record = {
        "ts": round(time.time(), 3),
        "level": name.lower(),
        "severity": name,
        "event": event,
        **fields,
    }
    line = _dumps(record, finite=True).decode()  # orjson where installed (NaN as null)
    sink = _SINK
    if sink is not None and level < WARNING and logger.name == LOGGER_NAME:
        sink(line)  # no filter applies below WARNING (RateLimitFilter)
        return
    logger.log(level, line)
