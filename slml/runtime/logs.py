"""Structured logs: one JSON object per line on stderr, through ``logging``.

The logger is ``slml.runtime``. Each record's message is already a JSON object (built
by ``log_event``), so any handler can forward it as is (CloudWatch, Cloud Logging and
Azure parse JSON lines).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "slml.runtime"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (test capture, redirection)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        del value


def get_logger() -> logging.Logger:
    """The runtime's logger, with a stderr JSON-line handler unless one is configured."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the JSON line once, not again through the root logger
    return logger


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``{"ts", "level", "event", **fields}`` as one JSON line."""
    if not logger.isEnabledFor(level):
        return
    record = {
        "ts": round(time.time(), 3),
        "level": logging.getLevelName(level).lower(),
        "event": event,
        **fields,
    }
    logger.log(level, json.dumps(record, default=str, separators=(",", ":")))
