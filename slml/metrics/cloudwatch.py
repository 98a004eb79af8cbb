"""Lambda versions' figures from CloudWatch: the EMF metrics the runtime logs
(namespace ``slml``, dimensions ``Model`` and ``Version``; slml/runtime/metrics.py).

``ListMetrics`` finds the versions that reported (Lambda's own published version numbers,
from ``AWS_LAMBDA_FUNCTION_VERSION``), one ``GetMetricData`` call reads them all over the
window: Sum of Requests and Errors, Average of BatchRows, p50 and p99 of Latency.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slml.metrics import VersionMetrics
from slml.runtime.metrics import EMF_NAMESPACE

_STATS = (("requests", "Requests", "Sum"), ("errors", "Errors", "Sum"),
          ("rows", "BatchRows", "Average"), ("p50", "Latency", "p50"),
          ("p99", "Latency", "p99"))  # fmt: skip


def model_name(ctx: Any) -> str:
    """The served model's name (its manifest's), the ``Model`` dimension."""
    from slml.runtime.manifest import MANIFEST_FILE

    manifest = json.loads((ctx.config.model / MANIFEST_FILE).read_text(encoding="utf-8"))
    return str(manifest["name"])


def lambda_metrics(
    ctx: Any, *, window_s: int = 3600, client: Any = None, now: datetime | None = None
) -> list[VersionMetrics]:
    """One VersionMetrics per version that reported in the last ``window_s`` seconds."""
    if client is None:
        import boto3

        client = boto3.client("cloudwatch", region_name=ctx.config.aws.region)
    return read(client, model_name(ctx), window_s=window_s, now=now)


def versions(client: Any, model: str) -> list[str]:
    """The Version dimension values CloudWatch knows for this model."""
    found: set[str] = set()
    dims = [{"Name": "Model", "Value": model}]
    pages = client.get_paginator("list_metrics").paginate(
        Namespace=EMF_NAMESPACE, MetricName="Requests", Dimensions=dims
    )
    for page in pages:
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            if dims.get("Model") == model and "Version" in dims:
                found.add(dims["Version"])
    return sorted(found, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def queries(
    model: str, version_list: list[str], window_s: int, *, percentiles: bool = True
) -> list[dict[str, Any]]:
    """The GetMetricData queries: ids ``v<i>_<stat>``, one period over the window
    (rounded up to whole minutes, CloudWatch's unit)."""
    series = [[{"Name": "Model", "Value": model}, {"Name": "Version", "Value": version}]
              for version in version_list]  # fmt: skip
    return metric_queries(EMF_NAMESPACE, series, _STATS, window_s, percentiles=percentiles)


def metric_queries(
    namespace: str, series: list[list[dict[str, str]]], stats: tuple[tuple[str, str, str], ...],
    window_s: int, *, percentiles: bool = True,
) -> list[dict[str, Any]]:  # fmt: skip
    """One query per (series ``i``, stat ``(key, metric, statistic)``), id ``v<i>_<key>``,
    one period over the window rounded up to whole minutes; ``percentiles=False``
    leaves the ``p..`` statistics out."""
    period = max(60, -(-window_s // 60) * 60)
    out = []
    for i, dims in enumerate(series):
        for key, name, stat in stats:
            if stat.startswith("p") and not percentiles:
                continue
            metric = {"Namespace": namespace, "MetricName": name, "Dimensions": dims}
            stat_spec = {"Metric": metric, "Period": period, "Stat": stat}
            out.append({"Id": f"v{i}_{key}", "ReturnData": True, "MetricStat": stat_spec})
    return out


def read(
    client: Any, model: str, *, window_s: int, now: datetime | None = None,
    version_list: list[str] | None = None, percentiles: bool = True,
) -> list[VersionMetrics]:  # fmt: skip
    """Query CloudWatch and fold the answers into VersionMetrics (``percentiles=False``
    leaves p50/p99 out, for a CloudWatch that cannot compute them, such as moto's)."""
    version_list = versions(client, model) if version_list is None else version_list
    if not version_list:
        return []
    wanted = queries(model, version_list, window_s, percentiles=percentiles)
    values = fetch(client, wanted, window_s=window_s, now=now)
    return [_fold(i, v, values) for i, v in enumerate(version_list)]


def fetch(
    client: Any, wanted: list[dict[str, Any]], *, window_s: int, now: datetime | None = None
) -> dict[str, list[float]]:
    """``GetMetricData`` over the last ``window_s`` seconds, every page: query id ->
    its values."""
    end = now or datetime.now(UTC)
    values: dict[str, list[float]] = {}
    kwargs = {"MetricDataQueries": wanted, "StartTime": end - timedelta(seconds=window_s),
              "EndTime": end}  # fmt: skip
    while True:
        page = client.get_metric_data(**kwargs)
        for result in page["MetricDataResults"]:
            values.setdefault(result["Id"], []).extend(v for v in result["Values"] if v is not None)
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return values


def _fold(i: int, version: str, values: dict[str, list[float]]) -> VersionMetrics:
    def total(key: str) -> float:
        return sum(values.get(f"v{i}_{key}", []))

    def last(key: str) -> float | None:
        got = values.get(f"v{i}_{key}", [])
        return round(got[0], 3) if got else None  # one period: one value

    return VersionMetrics(
        version=version, requests=int(total("requests")), errors=int(total("errors")),
        p50_ms=last("p50"), p99_ms=last("p99"), batch_rows=last("rows"), source="cloudwatch",
    )  # fmt: skip
