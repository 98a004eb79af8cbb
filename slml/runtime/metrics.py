"""Per-version serving metrics, kept in a few lists of ints.

``RuntimeMetrics.observe(...)`` is called once per prediction request from the event
loop (the app's request middleware): it bumps a handful of counters, no lock and no
allocation beyond small ints. Two ways out:

- ``prometheus()``: Prometheus text exposition (format 0.0.4) for ``GET /metrics``:
  ``slml_requests_total{status}``, ``slml_errors_total{code}``, the histograms
  ``slml_request_duration_seconds`` and ``slml_batch_rows``, and the capture counters
  ``slml_capture_records_total`` / ``slml_capture_dropped_total``; every series carries
  ``model`` and ``version`` labels (see ``RuntimeMetrics.for_model``).
- ``emf_line()``: one CloudWatch embedded-metric-format JSON line with what happened
  since the previous call (Lambda prints it after each invocation: no API call). The
  namespace is ``slml``, the dimensions ``Model`` and ``Version``, the metrics
  ``Requests``, ``Errors``, ``Latency`` (ms, one value per request) and ``BatchRows``.

Counts are per process: with several server processes, each has its own.
"""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slml.runtime.capture import Capture
    from slml.runtime.loader import LoadedModel

#: Latency bucket bounds in seconds (Prometheus ``le``), fine enough for p50/p99.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: Rows-per-request bucket bounds.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
#: Routes that are predictions: the only ones counted.
PREDICT_PATHS = frozenset({"/predict", "/invocations"})
EMF_NAMESPACE = "slml"
_EMF_MAX_VALUES = 100  # CloudWatch takes at most 100 values per metric in one EMF line


class Histogram:
    """Cumulative-on-export histogram: one int per bucket plus +Inf, a sum and a count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        edges: tuple[float | str, ...] = (*self.bounds, "+Inf")
        for bound, n in zip(edges, self.counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{{labels},le="{_num(bound)}"}} {running}')
        out.append(f"{name}_sum{{{labels}}} {_num(self.sum)}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class RuntimeMetrics:
    """The counters of one served model version. Not thread-safe by design: only the
    event loop thread calls ``observe``; the capture thread bumps its own two ints."""

    def __init__(self, model: str, version: str, *, keep_values: bool = False) -> None:
        self.model, self.version = model, version
        self.labels = f'model="{_escape(model)}",version="{_escape(version)}"'
        self.requests: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch = Histogram(BATCH_BUCKETS)
        self.capture: Capture | None = None  # its ``written`` and ``dropped`` are exported
        self.keep_values = keep_values  # Lambda: the raw values for the next EMF line
        self._pending: list[tuple[float, int | None, bool]] = []

    @classmethod
    def for_model(cls, model: LoadedModel) -> RuntimeMetrics:
        """Metrics for a LoadedModel (the Lambda handler turns ``keep_values`` on). The
        version: ``SLML_VERSION`` (local deploys set it), else Lambda's published version
        (``AWS_LAMBDA_FUNCTION_VERSION`` unless ``$LATEST``), else the manifest's."""
        published = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "").removeprefix("$LATEST")
        version = os.environ.get("SLML_VERSION") or published or str(model.version)
        return cls(str(model.name), version)

    def observe(self, path: str, status: int, seconds: float, state: dict[str, Any]) -> None:
        """Count one request (ignored unless ``path`` is a prediction route). ``state``
        is the request's ASGI state: ``batch_size`` and ``error_code`` are read from it."""
        if path not in PREDICT_PATHS:
            return
        self.requests[status] = self.requests.get(status, 0) + 1
        self.latency.observe(seconds)
        rows = state.get("batch_size")
        if rows is not None and status < 400:
            self.batch.observe(rows)
        failed = status >= 400
        if failed:
            code = state.get("error_code") or f"http_{status}"
            self.errors[code] = self.errors.get(code, 0) + 1
        if self.keep_values and len(self._pending) < _EMF_MAX_VALUES:
            self._pending.append((seconds * 1000.0, rows if not failed else None, failed))

    def prometheus(self) -> str:
        """The text exposition of every series (ends with a newline)."""
        lab = self.labels
        statuses = sorted(self.requests.items())
        codes = sorted(self.errors.items())
        out = [
            "# HELP slml_requests_total Prediction requests answered, by HTTP status.",
            "# TYPE slml_requests_total counter",
            *(f'slml_requests_total{{{lab},status="{s}"}} {n}' for s, n in statuses),
            "# HELP slml_errors_total Prediction requests that failed, by error code.",
            "# TYPE slml_errors_total counter",
            *(f'slml_errors_total{{{lab},code="{_escape(c)}"}} {n}' for c, n in codes),
            "# HELP slml_request_duration_seconds Time in the app per prediction request.",
            "# TYPE slml_request_duration_seconds histogram",
            *self.latency.lines("slml_request_duration_seconds", lab),
            "# HELP slml_batch_rows Rows per successful prediction request.",
            "# TYPE slml_batch_rows histogram",
            *self.batch.lines("slml_batch_rows", lab),
            "# HELP slml_capture_records_total Requests handed to the capture sink.",
            "# TYPE slml_capture_records_total counter",
            f"slml_capture_records_total{{{lab}}} {self.capture.written if self.capture else 0}",
            "# HELP slml_capture_dropped_total Captured requests dropped (queue full, sink down).",
            "# TYPE slml_capture_dropped_total counter",
            f"slml_capture_dropped_total{{{lab}}} {self.capture.dropped if self.capture else 0}",
        ]  # fmt: skip
        return "\n".join(out) + "\n"

    def emf_line(self, now: float | None = None) -> str | None:
        """One EMF JSON line for the requests since the last call, None when there were
        none. Resets what it reports."""
        pending, self._pending = self._pending, []
        if not pending:
            return None
        rows = [r for _, r, _ in pending if r is not None]
        metrics = [
            {"Name": "Requests", "Unit": "Count"},
            {"Name": "Errors", "Unit": "Count"},
            {"Name": "Latency", "Unit": "Milliseconds"},
            *([{"Name": "BatchRows", "Unit": "Count"}] if rows else []),
        ]
        doc: dict[str, Any] = {
            "_aws": {
                "Timestamp": int((time.time() if now is None else now) * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": EMF_NAMESPACE,
                        "Dimensions": [["Model", "Version"]],
                        "Metrics": metrics,
                    }
                ],
            },
            "Model": self.model,
            "Version": self.version,
            "Requests": len(pending),
            "Errors": sum(1 for *_, failed in pending if failed),
            "Latency": [round(ms, 3) for ms, _, _ in pending],
        }  # fmt: skip
        if rows:
            doc["BatchRows"] = rows
        return json.dumps(doc, separators=(",", ":"))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return repr(float(value)) if not float(value).is_integer() else f"{float(value):.1f}"
