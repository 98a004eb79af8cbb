"""Where a prediction runs: inline on the event loop, or in a worker thread.

A worker thread costs a hand-off and GIL ping-pong on every request; for a model that
predicts in tens of microseconds that hand-off is most of the request. Blocking the
event loop is only acceptable for work that is certainly short, so the choice is made
from measurements: each run's duration and body size feed a moving average, and a
request runs inline when its expected cost is under ``budget_s``. The first requests,
and any body much larger than usual, go to the thread pool.
"""

from __future__ import annotations

import os

DEFAULT_BUDGET_MS = 5.0
_ALPHA = 0.1  # weight of the newest observation in the moving averages


class InlinePolicy:
    """Decides inline vs thread per request. Not thread-safe by design: it is only
    updated from the event loop thread (worker runs report back through ``observe``)."""

    def __init__(self, budget_s: float | None = None) -> None:
        if budget_s is None:
            budget_s = float(os.environ.get("SLML_INLINE_BUDGET_MS", DEFAULT_BUDGET_MS)) / 1000
        self.budget_s = max(budget_s, 0.0)
        self._seconds: float | None = None  # moving average of a run's duration
        self._bytes: float = 1.0  # moving average of the body size of those runs

    def inline(self, body_size: int) -> bool:
        """True when a body of ``body_size`` bytes is expected to run under budget."""
        if self._seconds is None or self.budget_s == 0:
            return False
        scale = max(1.0, body_size / self._bytes)
        return self._seconds * scale < self.budget_s

    def observe(self, body_size: int, seconds: float) -> None:
        if self._seconds is None:
            self._seconds, self._bytes = seconds, float(max(body_size, 1))
            return
        self._seconds += _ALPHA * (seconds - self._seconds)
        self._bytes += _ALPHA * (max(body_size, 1) - self._bytes)
