"""When the local engine starts one more worker process: when it pays for its start.

A process scores nothing until it has loaded the model (``load`` seconds, measured on
the first one), and while it loads it takes a core from the others. Each partition costs
the parent ``parent`` seconds (reading and parsing it, writing its output) and a worker
``busy`` seconds (from spawn to answer, measured on the answers). With ``n`` processes
the run goes at one partition per ``max(parent, busy / n)`` seconds, so one more is worth
its start only when the partitions left, at the faster pace, would end more than a load's
time sooner. A run bound by the parent's reading and writing never starts a second
process; nor does one that would end before the second could take a partition.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

SMOOTHING = 0.3  # weight of the newest answer in ``busy``
NOISE = 0.1  # a pace less than this much faster is within the measurements' noise


@dataclass
class Pace:
    """Measured costs of the run so far; updated from several threads."""

    load: float | None = None  # seconds the first process took to be ready
    busy: float | None = None  # a process's seconds per partition, smoothed
    read: float = 0.0  # the parent's seconds reading partitions, all of them
    reads: int = 0
    written: float = 0.0  # the parent's seconds writing results, all of them
    writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def scored(self, seconds: float) -> None:
        """A process answered a partition it had worked on for ``seconds``."""
        with self._lock:
            self.busy = seconds if self.busy is None else (
                SMOOTHING * seconds + (1 - SMOOTHING) * self.busy)

    def took_to_read(self, seconds: float) -> None:
        with self._lock:
            self.read += seconds
            self.reads += 1

    def took_to_write(self, seconds: float) -> None:
        with self._lock:
            self.written += seconds
            self.writes += 1

    @property
    def parent(self) -> float | None:
        """The parent's seconds per partition, once it has read and written one."""
        if not self.reads or not self.writes:
            return None
        return self.read / self.reads + self.written / self.writes

    def worth_one_more(self, running: int, left: float | None) -> bool:
        """Whether a process more than ``running`` would end the run a load's time
        sooner, with about ``left`` partitions still to score (None: not known, taken
        as a long run)."""
        parent, busy, load = self.parent, self.busy, self.load
        if parent is None or busy is None or load is None:
            return False
        now = max(parent, busy / running)
        saved = now - max(parent, busy / (running + 1))
        if saved <= NOISE * now:
            return False
        return left is None or left * saved > load
