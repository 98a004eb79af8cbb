"""Cloud Run revisions' figures from Cloud Monitoring (``projects.timeSeries.list``).

Cloud Run measures every revision itself: ``run.googleapis.com/request_count`` (labels
``response_code_class``, ``response_code``) and ``run.googleapis.com/request_latencies``
(a distribution, ms), on the ``cloud_run_revision`` resource. One call reads counts per
revision and code class over the window, two more the p50 and p99 latency per revision.
The version of a revision is its name (``<service>-00003-abc``). Rows per request are
not measured by Cloud Run: ``batch_rows`` stays None. Needs roles/monitoring.viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from slml.errors import DeployError, ProviderUnavailable
from slml.metrics import VersionMetrics
from slml.providers.outputs import GcpOutputs

API = "https://monitoring.googleapis.com/v3"
READ_SCOPE = "https://www.googleapis.com/auth/monitoring.read"
REVISION = "resource.label.revision_name"


def _filter(metric: str, service: str, region: str) -> str:
    return " AND ".join((
        f'metric.type="run.googleapis.com/{metric}"', 'resource.type="cloud_run_revision"',
        f'resource.labels.service_name="{service}"', f'resource.labels.location="{region}"',
    ))  # fmt: skip


def _params(flt: str, start: datetime, end: datetime, window_s: int, **agg: str) -> dict:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"filter": flt, "interval.startTime": start.strftime(fmt),
            "interval.endTime": end.strftime(fmt),
            "aggregation.alignmentPeriod": f"{max(60, window_s)}s",
            **{f"aggregation.{k}": v for k, v in agg.items()}}  # fmt: skip


def list_series(client: httpx.Client, token: str, project: str, params: dict) -> list[dict]:
    """Every time series of the query, following page tokens. Raises DeployError."""
    series, page = [], None
    while True:
        query = {**params, **({"pageToken": page} if page else {})}
        r = client.get(f"{API}/projects/{project}/timeSeries", params=query,
                       headers={"authorization": f"Bearer {token}"})  # fmt: skip
        if r.status_code != 200:
            raise DeployError(
                f"Cloud Monitoring answered {r.status_code}: {r.text[:300]}",
                hint="your account needs roles/monitoring.viewer on the project",
            )
        body = r.json()
        series.extend(body.get("timeSeries", []))
        page = body.get("nextPageToken")
        if not page:
            return series


def _value(point: dict) -> float:
    v = point.get("value", {})
    return float(v.get("int64Value", v.get("doubleValue", 0)))


def read(
    client: httpx.Client, token: str, *, project: str, service: str, region: str,
    window_s: int = 3600, now: datetime | None = None,
) -> list[VersionMetrics]:  # fmt: skip
    """One VersionMetrics per revision that served in the window."""
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=window_s)
    counts: dict[str, dict[str, float]] = {}
    count_q = _params(_filter("request_count", service, region), start, end, window_s,
                      perSeriesAligner="ALIGN_DELTA", crossSeriesReducer="REDUCE_SUM",
                      groupByFields=[REVISION, "metric.label.response_code_class"])  # fmt: skip
    for s in list_series(client, token, project, count_q):
        rev = s["resource"]["labels"]["revision_name"]
        cls = s.get("metric", {}).get("labels", {}).get("response_code_class", "")
        counts.setdefault(rev, {})[cls] = sum(_value(p) for p in s.get("points", []))
    lat: dict[str, dict[str, float]] = {}
    for q in ("50", "99"):
        lat_q = _params(_filter("request_latencies", service, region), start, end, window_s,
                        perSeriesAligner="ALIGN_DELTA", crossSeriesReducer=f"REDUCE_PERCENTILE_{q}",
                        groupByFields=[REVISION])  # fmt: skip
        for s in list_series(client, token, project, lat_q):
            points = s.get("points", [])
            if points:
                lat.setdefault(s["resource"]["labels"]["revision_name"], {})[q] = _value(points[0])
    return [_fold(rev, c, lat.get(rev, {})) for rev, c in sorted(counts.items())]


def _fold(rev: str, by_class: dict[str, float], lat: dict[str, float]) -> VersionMetrics:
    errors = {k: int(n) for k, n in by_class.items() if k[:1] in ("4", "5")}
    return VersionMetrics(
        version=rev, requests=int(sum(by_class.values())), errors=sum(errors.values()),
        p50_ms=lat.get("50"), p99_ms=lat.get("99"), batch_rows=None,
        source="cloud-monitoring", errors_by_code=errors,
    )  # fmt: skip


def default_token() -> Callable[[], str]:
    try:
        import google.auth
        from google.auth.transport.requests import Request
    except ImportError:
        raise ProviderUnavailable("reading Cloud Monitoring needs google-auth",
                                  hint="pip install 'slml[gcp]'") from None  # fmt: skip
    credentials, _ = google.auth.default(scopes=[READ_SCOPE])

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(Request())
        return str(credentials.token)

    return token


def cloud_run_metrics(
    ctx: Any, *, window_s: int = 3600, transport: httpx.BaseTransport | None = None,
    token: Callable[[], str] | None = None,
) -> list[VersionMetrics]:  # fmt: skip
    """The figures of the stage's Cloud Run service (from its deployment record)."""
    out = GcpOutputs.of(ctx.state.read_record(ctx.stage, "gcp"))
    project = out.project or ctx.config.gcp.project
    if not out.service_name or not project:
        raise DeployError(f"no gcp deployment recorded for stage {ctx.stage}",
                          hint="run `slml deploy --provider gcp` first")  # fmt: skip
    with httpx.Client(transport=transport, timeout=30) as client:
        return read(client, (token or default_token())(), project=project,
                    service=out.service_name, window_s=window_s,
                    region=out.region or ctx.config.gcp.region)  # fmt: skip
