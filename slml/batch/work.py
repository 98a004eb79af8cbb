"""What every engine shares: a partition's work, the engine protocol, the wire format
of the local workers, and the bounded submission loop."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any, Protocol

from slml.runtime.batch import Scored

ROW_VALUE_BYTES = 64  # what one value of a row list holds in memory, roughly (object + slot)


class EngineError(RuntimeError):
    """An engine could not start or lost a worker."""


class EngineStartError(EngineError):
    """The model did not load in a worker: a rerun would fail the same way."""


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

    @property
    def nbytes(self) -> int:
        """About what this partition holds in memory (its data, not Python's overheads)."""
        if self.f64 is not None:
            return len(self.f64)
        if self.csv is not None:
            return len(self.csv)
        return sum(len(row) if isinstance(row, list | dict) else 1
                   for row in self.rows) * ROW_VALUE_BYTES  # fmt: skip


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
