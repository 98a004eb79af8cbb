"""The Function App's figures from Azure Monitor platform metrics (``Microsoft.Insights/
metrics`` on the site's resource id): ``Requests``, ``Http4xx``, ``Http5xx`` totals over
the window. Azure Monitor's platform metrics have no latency percentiles and Flex
Consumption runs one version (no slots), so there is one VersionMetrics, the recorded
deployment version, with p50/p99 and rows per request left None. Needs the Monitoring
Reader role on the app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from slml.errors import DeployError
from slml.metrics import VersionMetrics
from slml.providers.outputs import AzureOutputs

API_VERSION = "2023-10-01"
METRICS = ("Requests", "Http4xx", "Http5xx")


def read(
    client: httpx.Client, token: str, *, app_id: str, version: str, window_s: int = 3600,
    now: datetime | None = None,
) -> VersionMetrics:  # fmt: skip
    """Totals of the app's request metrics over the window. Raises DeployError."""
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=window_s)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    params = {"api-version": API_VERSION, "metricnames": ",".join(METRICS),
              "timespan": f"{start.strftime(fmt)}/{end.strftime(fmt)}",
              "aggregation": "Total", "interval": "PT1M"}  # fmt: skip
    r = client.get(f"https://management.azure.com{app_id}/providers/Microsoft.Insights/metrics",
                   params=params, headers={"authorization": f"Bearer {token}"})  # fmt: skip
    if r.status_code != 200:
        raise DeployError(
            f"Azure Monitor answered {r.status_code}: {r.text[:300]}",
            hint="your account needs the Monitoring Reader role on the app",
        )
    totals = {name: 0.0 for name in METRICS}
    for metric in r.json().get("value", []):
        name = metric.get("name", {}).get("value")
        for series in metric.get("timeseries", []):
            totals[name] = totals.get(name, 0.0) + sum(
                p.get("total") or 0.0 for p in series.get("data", [])
            )
    codes = {"4xx": int(totals["Http4xx"]), "5xx": int(totals["Http5xx"])}
    return VersionMetrics(
        version=version, requests=int(totals["Requests"]), errors=sum(codes.values()),
        p50_ms=None, p99_ms=None, batch_rows=None, source="azure-monitor",
        errors_by_code={k: n for k, n in codes.items() if n},
    )  # fmt: skip


def function_app_metrics(
    ctx: Any, *, window_s: int = 3600, transport: httpx.BaseTransport | None = None,
    token: Callable[[], str] | None = None,
) -> list[VersionMetrics]:  # fmt: skip
    """The stage's Function App figures (from its deployment record)."""
    record = ctx.state.read_record(ctx.stage, "azure") or {}
    app_id = AzureOutputs.of(record).app_id
    if not app_id:
        raise DeployError(f"no azure deployment recorded for stage {ctx.stage}",
                          hint="run `slml deploy --provider azure` first")  # fmt: skip
    if token is None:
        from slml.providers.azure_ops import default_token_getter

        token = default_token_getter()
    with httpx.Client(transport=transport, timeout=30) as client:
        return [read(client, token(), app_id=app_id, version=str(record.get("version", "")),
                     window_s=window_s)]  # fmt: skip
