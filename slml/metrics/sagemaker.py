"""SageMaker endpoint variants' figures from CloudWatch: SageMaker's own metrics
(namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``), so
nothing in the runtime reports them.

``ListMetrics`` finds the variants that reported (slml names them ``v<N>``; an endpoint
deployed before slml tracked versions has ``AllTraffic``), one ``GetMetricData`` call
reads them all over the window: Sum of ``Invocations`` and ``Invocation5XXErrors``
(the errors the guard judges; ``Invocation4XXErrors`` are the callers'), and p50/p99
of ``ModelLatency``, which SageMaker reports in microseconds (shown in ms). Rows per
request are not measured there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slml.metrics import VersionMetrics
from slml.metrics.cloudwatch import fetch, metric_queries
from slml.providers.outputs import SageMakerOutputs

NAMESPACE = "AWS/SageMaker"
_STATS = (("requests", "Invocations", "Sum"), ("errors", "Invocation5XXErrors", "Sum"),
          ("client_errors", "Invocation4XXErrors", "Sum"),
          ("p50", "ModelLatency", "p50"), ("p99", "ModelLatency", "p99"))  # fmt: skip


def endpoint_of(ctx: Any) -> tuple[str, str]:
    """(endpoint name, region) from the deployment record. Raises NotDeployed."""
    from slml.errors import NotDeployed

    outputs = SageMakerOutputs.of(ctx.state.read_record(ctx.stage, "sagemaker"))
    if not outputs.endpoint_name:
        raise NotDeployed(f"nothing is deployed in stage {ctx.stage} (sagemaker)",
                          hint="deploy first: `slml deploy --provider sagemaker`")  # fmt: skip
    return outputs.endpoint_name, outputs.region or ctx.config.sagemaker.region


def endpoint_metrics(
    ctx: Any, *, window_s: int = 3600, client: Any = None, now: datetime | None = None
) -> list[VersionMetrics]:
    """One VersionMetrics per variant (``version`` is its name) that reported in the
    last ``window_s`` seconds."""
    endpoint, region = endpoint_of(ctx)
    if client is None:
        import boto3

        client = boto3.client("cloudwatch", region_name=region)
    return read(client, endpoint, window_s=window_s, now=now)


def variants(client: Any, endpoint: str) -> list[str]:
    """The VariantName values CloudWatch knows for this endpoint, sorted by version."""
    found: set[str] = set()
    pages = client.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE, MetricName="Invocations",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
    )  # fmt: skip
    for page in pages:
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            if dims.get("EndpointName") == endpoint and "VariantName" in dims:
                found.add(dims["VariantName"])
    return sorted(found, key=_order)


def _order(name: str) -> tuple[bool, int, str]:
    number = name[1:]
    return (not (name.startswith("v") and number.isdigit()),
            int(number) if number.isdigit() else 0, name)  # fmt: skip


def queries(endpoint: str, names: list[str], window_s: int, *,
            percentiles: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """The GetMetricData queries, ids ``v<i>_<stat>``, one period over the window."""
    series = [[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": n}]
              for n in names]  # fmt: skip
    return metric_queries(NAMESPACE, series, _STATS, window_s, percentiles=percentiles)


def read(
    client: Any, endpoint: str, *, window_s: int, now: datetime | None = None,
    names: list[str] | None = None, percentiles: bool = True,
) -> list[VersionMetrics]:  # fmt: skip
    """Query CloudWatch and fold the answers into VersionMetrics (``percentiles=False``
    for a CloudWatch that cannot compute them, such as moto's)."""
    names = variants(client, endpoint) if names is None else names
    if not names:
        return []
    wanted = queries(endpoint, names, window_s, percentiles=percentiles)
    values = fetch(client, wanted, window_s=window_s, now=now)
    return [_fold(i, name, values) for i, name in enumerate(names)]


def _fold(i: int, name: str, values: dict[str, list[float]]) -> VersionMetrics:
    def total(key: str) -> int:
        return int(sum(values.get(f"v{i}_{key}", [])))

    def ms(key: str) -> float | None:
        got = values.get(f"v{i}_{key}", [])
        return round(got[0] / 1000.0, 3) if got else None  # microseconds; one period

    errors, client_errors = total("errors"), total("client_errors")
    codes = {k: n for k, n in (("5xx", errors), ("4xx", client_errors)) if n}
    return VersionMetrics(
        version=name, requests=total("requests"), errors=errors, p50_ms=ms("p50"),
        p99_ms=ms("p99"), batch_rows=None, source="cloudwatch:AWS/SageMaker",
        errors_by_code=codes,
    )  # fmt: skip
