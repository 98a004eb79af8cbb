"""Reading a served version's metrics back: ``version_metrics(ctx, version)`` and
``live_metrics(ctx)`` give a ``VersionMetrics`` per version (requests, error rate,
p50/p99 latency, mean rows per request), for guardrails and ``slml metrics``.

Local: each live server's ``GET /metrics`` (Prometheus text, slml/runtime/metrics.py);
the figures are since the server started. AWS Lambda: CloudWatch ``GetMetricData`` on
the EMF metrics the runtime logs (slml/metrics/cloudwatch.py), over ``window``. Cloud
Run: Cloud Monitoring's own per-revision metrics (slml/metrics/cloudmonitoring.py).
Azure: Azure Monitor's request totals of the Function App (slml/metrics/azuremonitor.py).
SageMaker: CloudWatch's AWS/SageMaker metrics per variant (slml/metrics/sagemaker.py).
Other targets raise UsageError saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from slml.errors import UsageError


@dataclass(frozen=True)
class VersionMetrics:
    """One version's figures; ``None`` where there is no data (e.g. no requests)."""

    version: str
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    batch_rows: float | None
    source: str
    errors_by_code: dict[str, int] | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate}


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``name -> [(labels, value)]`` for every sample line of a text exposition."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = dict(_label(p) for p in _split_labels(rest.rstrip("}")) if p)
        out.setdefault(name, []).append((labels, float(value)))
    return out


def _split_labels(text: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for ch in text:
        if ch == '"' and not cur.endswith("\\"):
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _label(pair: str) -> tuple[str, str]:
    key, _, value = pair.partition("=")
    return key.strip(), value.strip().strip('"').replace('\\"', '"').replace("\\\\", "\\")


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus ``histogram_quantile``: linear within the bucket holding rank q*n.
    ``buckets`` are (upper bound, cumulative count), +Inf last."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bound: its value is the best we know
            width = count - below
            return lower + (bound - lower) * ((rank - below) / width if width else 1.0)
        lower, below = bound, count
    return lower


def from_prometheus(text: str, *, version: str | None = None) -> VersionMetrics:
    """The summary of one server's /metrics (the ``version`` label unless given)."""
    series = parse_prometheus(text)
    requests = int(sum(v for _, v in series.get("slml_requests_total", [])))
    codes = {lab["code"]: int(v) for lab, v in series.get("slml_errors_total", [])}
    buckets = series.get("slml_request_duration_seconds_bucket", [])
    lat = [(float(lab["le"]), v) for lab, v in buckets]
    p50, p99 = quantile(0.5, lat), quantile(0.99, lat)
    rows_sum = sum(v for _, v in series.get("slml_batch_rows_sum", []))
    rows_n = sum(v for _, v in series.get("slml_batch_rows_count", []))
    labelled = next((lab.get("version") for lab, _ in series.get("slml_batch_rows_count", [])), "")
    return VersionMetrics(
        version=str(version or labelled),
        requests=requests,
        errors=sum(codes.values()),
        p50_ms=None if p50 is None else round(p50 * 1000, 3),
        p99_ms=None if p99 is None else round(p99 * 1000, 3),
        batch_rows=round(rows_sum / rows_n, 2) if rows_n else None,
        source="prometheus",
        errors_by_code=codes,
    )


@dataclass(frozen=True)
class HttpClients:
    """For the monitoring services read over REST (Cloud Monitoring, Azure Monitor): the
    httpx transport and the bearer-token getter to use instead of the default
    credentials (tests, or a caller with its own token)."""

    transport: Any = None  # httpx.BaseTransport
    token: Callable[[], str] | None = None


def _http(clients: Any) -> dict[str, Any]:
    if isinstance(clients, HttpClients):
        return {"transport": clients.transport, "token": clients.token}
    return {"transport": clients}


def live_metrics(ctx: Any, *, window_s: int = 3600, clients: Any = None) -> list[VersionMetrics]:
    """Every live version's figures on the context's provider. ``clients``: what the
    reader calls instead of the real service (an httpx transport or ``HttpClients`` for
    local, gcp and azure; a boto3 client for aws and sagemaker). Raises UsageError for a
    provider slml cannot read metrics from yet, NotDeployed when nothing is deployed."""
    provider = ctx.config.provider
    if provider == "local":
        from slml.metrics.local import local_metrics

        return local_metrics(ctx, transport=clients)
    if provider == "aws":
        from slml.metrics.cloudwatch import lambda_metrics

        return lambda_metrics(ctx, window_s=window_s, client=clients)
    if provider == "gcp":
        from slml.metrics.cloudmonitoring import cloud_run_metrics

        return cloud_run_metrics(ctx, window_s=window_s, **_http(clients))
    if provider == "azure":
        from slml.metrics.azuremonitor import function_app_metrics

        return function_app_metrics(ctx, window_s=window_s, **_http(clients))
    if provider == "sagemaker":
        from slml.metrics.sagemaker import endpoint_metrics

        return endpoint_metrics(ctx, window_s=window_s, client=clients)
    raise UsageError(
        f"slml metrics does not read {provider} metrics yet",
        hint="local, aws, sagemaker, gcp and azure are supported",
    )


def version_metrics(
    ctx: Any, version: int | str, *, window_s: int = 3600, clients: Any = None
) -> VersionMetrics | None:
    """The figures of one live version, None when it has none (not live, no data)."""
    for found in live_metrics(ctx, window_s=window_s, clients=clients):
        if found.version == str(version):
            return found
    return None
