"""The guard's ``version_metrics`` on a cloud rollout target reads the target's own
monitoring (slml/metrics) and finds a version by its handle: on Lambda the published
version, which is not slml's version number."""

from __future__ import annotations

import json
from typing import Any

from slml.providers.aws import AwsProvider
from tests.providers.test_aws import URL, context


class RecordedLambdaMetrics:
    """CloudWatch answering ListMetrics (the EMF Version dimension: Lambda versions 11
    and 12) and GetMetricData from a recording."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def get_paginator(self, name: str) -> RecordedLambdaMetrics:
        return self

    def paginate(self, **kwargs: Any) -> list[dict]:
        dims = [[{"Name": "Model", "Value": "iris"}, {"Name": "Version", "Value": v}]
                for v in ("11", "12")]  # fmt: skip
        return [{"Metrics": [{"Dimensions": d} for d in dims]}]

    def get_metric_data(self, **kwargs: Any) -> dict:
        self.calls.append(kwargs)
        rows = {"v0_requests": 500.0, "v0_errors": 0.0, "v0_p99": 20.0,
                "v1_requests": 40.0, "v1_errors": 8.0, "v1_p99": 95.0}  # fmt: skip
        return {"MetricDataResults": [{"Id": k, "Values": [v]} for k, v in rows.items()]}


def test_lambda_canary_figures_come_from_its_published_version(tmp_path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "slml-model.json").write_text(json.dumps({"name": "iris"}))
    ctx = context(tmp_path)
    traffic = [{"version": 1, "percent": 90.0, "role": "primary", "ref": "11"},
               {"version": 2, "percent": 10.0, "role": "canary", "ref": "12"}]  # fmt: skip
    ctx.state.write_record("dev", "aws", {"version": 2, "url": URL, "traffic": traffic,
                                          "outputs": {"url": URL, "traffic": traffic}})
    client = RecordedLambdaMetrics()
    provider = AwsProvider(metrics_client=client, cli_available=lambda: True)
    canary = provider.version_metrics(ctx=ctx, version=2, window=30)
    assert (canary.version, canary.requests, canary.errors, canary.p99_ms) == (2, 40, 8, 95.0)
    assert canary.error_rate == 0.2
    primary = provider.version_metrics(ctx=ctx, version=1, window=30)
    assert (primary.requests, primary.errors) == (500, 0)
    # a 30 s guard window still asks for one whole CloudWatch minute
    start, end = client.calls[0]["StartTime"], client.calls[0]["EndTime"]
    assert (end - start).total_seconds() == 60


def test_cloud_run_canary_figures_come_from_its_revision(tmp_path) -> None:
    """The guard on gcp: Cloud Monitoring's per-revision counts and latencies (a recorded
    transport, an injected token), found by the canary's revision name."""
    import httpx

    from slml.metrics import HttpClients
    from tests.metrics.test_cloud_monitoring import series
    from tests.providers.test_gcp_provider import URL as RUN_URL
    from tests.providers.test_gcp_provider import make_ctx

    (tmp_path / "model").mkdir()
    ctx = make_ctx(tmp_path, tmp_path / "model")
    traffic = [{"version": 1, "percent": 90.0, "role": "primary", "ref": "iris-dev-v1"},
               {"version": 2, "percent": 10.0, "role": "canary", "ref": "iris-dev-v2"}]  # fmt: skip
    ctx.state.write_record("dev", "gcp", {"version": 2, "url": RUN_URL, "traffic": traffic,
                                          "outputs": {"url": RUN_URL, "traffic": traffic,
                                                      "service_name": "iris-dev",
                                                      "project": "proj-1",
                                                      "region": "us-central1"}})  # fmt: skip
    asked: list[httpx.Request] = []

    def monitoring(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        assert request.headers["authorization"] == "Bearer injected"
        assert "/projects/proj-1/timeSeries" in request.url.path
        params = request.url.params
        if "request_count" in params["filter"]:
            page = [series("iris-dev-v1", {"int64Value": "500"}, response_code_class="2xx"),
                    series("iris-dev-v2", {"int64Value": "32"}, response_code_class="2xx"),
                    series("iris-dev-v2", {"int64Value": "8"}, response_code_class="5xx")]
            return httpx.Response(200, json={"timeSeries": page})
        q = params["aggregation.crossSeriesReducer"].removeprefix("REDUCE_PERCENTILE_")
        page = [series("iris-dev-v2", {"doubleValue": {"50": 30.0, "99": 95.0}[q]})]
        return httpx.Response(200, json={"timeSeries": page})

    from slml.providers.gcp import GcpProvider

    clients = HttpClients(transport=httpx.MockTransport(monitoring), token=lambda: "injected")
    provider = GcpProvider(metrics_client=clients, cli_available=lambda: True)
    canary = provider.version_metrics(ctx=ctx, version=2, window=30)
    assert (canary.version, canary.requests, canary.errors, canary.p99_ms) == (2, 40, 8, 95.0)
    assert canary.error_rate == 0.2 and canary.errors_by_code == {"5xx": 8}
    primary = provider.version_metrics(ctx=ctx, version=1, window=30)
    assert (primary.requests, primary.errors) == (500, 0)
    assert asked[0].url.params["aggregation.alignmentPeriod"] == "60s"  # one whole minute
