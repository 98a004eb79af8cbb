"""SageMaker variants' figures from CloudWatch's AWS/SageMaker metrics (moto for the
counts, a recorded GetMetricData answer for the latency percentiles, which moto cannot
compute), and the guard judging a canary variant from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from slml.config import ProjectConfig
from slml.config.sections import GuardConfig
from slml.guard import watch
from slml.metrics import live_metrics
from slml.metrics.sagemaker import NAMESPACE, queries, read
from slml.providers.base import NullReporter, ProviderContext
from slml.providers.sagemaker import SageMakerProvider
from slml.state import ProjectState

ENDPOINT = "iris-prod"


def points(client: Any, variant: str, *, calls: int, errors5: int, errors4: int = 0) -> None:
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    now = datetime.now(UTC)
    client.put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Value": calls, "Timestamp": now},
        {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": errors5,
         "Timestamp": now},
        {"MetricName": "Invocation4XXErrors", "Dimensions": dims, "Value": errors4,
         "Timestamp": now},
    ])  # fmt: skip


@mock_aws
def test_counts_per_variant_in_version_order() -> None:
    client = boto3.client("cloudwatch", region_name="eu-west-1")
    points(client, "v10", calls=20, errors5=0)
    points(client, "v2", calls=180, errors5=9, errors4=3)
    got = read(client, ENDPOINT, window_s=3600, percentiles=False,
               now=datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
    assert [(m.version, m.requests, m.errors) for m in got] == [("v2", 180, 9), ("v10", 20, 0)]
    assert got[0].errors_by_code == {"5xx": 9, "4xx": 3}
    assert got[0].error_rate == pytest.approx(0.05)
    assert read(client, "another-endpoint", window_s=3600) == []


class Recorded:
    """A CloudWatch client answering ListMetrics and GetMetricData from recordings."""

    def __init__(self, variants: list[str], answer: dict) -> None:
        self.variants, self.answer, self.calls = variants, answer, []

    def get_paginator(self, name: str) -> Recorded:
        assert name == "list_metrics"
        return self

    def paginate(self, **kwargs: Any) -> list[dict]:
        endpoint = kwargs["Dimensions"][0]["Value"]
        return [{"Metrics": [{"Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                             {"Name": "VariantName", "Value": v}]}
                             for v in self.variants]}]  # fmt: skip

    def get_metric_data(self, **kwargs: Any) -> dict:
        self.calls.append(kwargs)
        return self.answer


def answer(i: int, *, calls: float, errors: float, p50_us: float, p99_us: float) -> list[dict]:
    return [{"Id": f"v{i}_requests", "Values": [calls]}, {"Id": f"v{i}_errors", "Values": [errors]},
            {"Id": f"v{i}_client_errors", "Values": []},
            {"Id": f"v{i}_p50", "Values": [p50_us]}, {"Id": f"v{i}_p99", "Values": [p99_us]}]


def test_model_latency_is_microseconds_shown_in_ms() -> None:
    client = Recorded(["v3"], {"MetricDataResults": answer(0, calls=50, errors=1, p50_us=4250,
                                                           p99_us=31000)})  # fmt: skip
    (got,) = read(client, ENDPOINT, window_s=600)
    assert (got.version, got.p50_ms, got.p99_ms, got.requests, got.errors) == (
        "v3", 4.25, 31.0, 50, 1)  # fmt: skip
    stats = {q["Id"]: (q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"])
             for q in client.calls[0]["MetricDataQueries"]}  # fmt: skip
    assert stats["v0_p99"] == ("ModelLatency", "p99")
    assert stats["v0_errors"] == ("Invocation5XXErrors", "Sum")
    assert queries(ENDPOINT, ["v1"], 90)[0]["MetricStat"]["Period"] == 120


def deployed(tmp_path: Path) -> ProviderContext:
    """A sagemaker stage with v1 primary (90%) and v2 canary (10%) recorded."""
    config = ProjectConfig(name="iris", model=tmp_path / "model", provider="sagemaker",
                           stage="prod", sagemaker={"region": "eu-west-1"})  # fmt: skip
    ctx = ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())
    traffic = [{"version": 1, "percent": 90.0, "role": "primary", "ref": "v1"},
               {"version": 2, "percent": 10.0, "role": "canary", "ref": "v2"}]  # fmt: skip
    ctx.state.write_record("prod", "sagemaker", {"version": 2, "traffic": traffic, "outputs": {
        "endpoint_name": ENDPOINT, "region": "eu-west-1", "traffic": traffic}})  # fmt: skip
    return ctx


def test_the_guard_breaches_a_failing_canary_variant(tmp_path: Path) -> None:
    results = [*answer(0, calls=900, errors=0, p50_us=3000, p99_us=9000),
               *answer(1, calls=100, errors=20, p50_us=3500, p99_us=12000)]
    client = Recorded(["v1", "v2"], {"MetricDataResults": results})
    ctx = deployed(tmp_path)
    provider = SageMakerProvider(metrics_client=client)
    figures = provider.version_metrics(ctx=ctx, version=2, window=60)
    assert (figures.version, figures.requests, figures.errors, figures.p99_ms) == (2, 100, 20, 12.0)
    verdict = watch(lambda: provider.version_metrics(ctx=ctx, version=2, window=60),
                    GuardConfig(max_error_rate=0.05), clock=lambda: 0.0,
                    sleep=lambda _: None, report=lambda _: None)  # fmt: skip
    assert verdict.outcome == "breached" and "20.0%" in verdict.reason
    assert [m.version for m in live_metrics(ctx, clients=client)] == ["v1", "v2"]


def test_a_variant_with_no_data_has_zero_requests(tmp_path: Path) -> None:
    provider = SageMakerProvider(metrics_client=Recorded([], {"MetricDataResults": []}))
    figures = provider.version_metrics(ctx=deployed(tmp_path), version=2, window=60)
    assert (figures.requests, figures.errors) == (0, 0)
