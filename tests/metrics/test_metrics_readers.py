"""Reading a version's figures back: Prometheus text (local) and CloudWatch (moto for
the counts, a recorded GetMetricData answer for the percentiles)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from slml.infra.aws_policies import capture_write_policy
from slml.metrics import from_prometheus, quantile
from slml.metrics.cloudwatch import queries, read
from slml.metrics.local import targets
from slml.runtime.metrics import RuntimeMetrics


def test_quantile_interpolates_within_the_bucket():
    buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.7, buckets) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.99, buckets) == pytest.approx(0.1 + 0.9 * 0.9)
    assert quantile(0.5, []) is None


def test_summary_of_the_runtime_exposition():
    m = RuntimeMetrics("iris", "3")
    for _ in range(98):
        m.observe("/predict", 200, 0.004, {"batch_size": 2})
    m.observe("/predict", 500, 0.9, {"error_code": "model_error"})
    m.observe("/predict", 422, 0.003, {"error_code": "invalid_input", "batch_size": 4})
    got = from_prometheus(m.prometheus())
    assert got.version == "3" and got.requests == 100 and got.errors == 2
    assert got.error_rate == pytest.approx(0.02)
    assert got.errors_by_code == {"invalid_input": 1, "model_error": 1}
    assert 2.5 <= got.p50_ms <= 5.0 and got.p99_ms > got.p50_ms
    assert got.batch_rows == 2.0  # failed requests' rows are not counted


def test_local_targets_prefer_the_admin_port():
    rec = {"version": 3, "url": "http://127.0.0.1:8000", "host": "0.0.0.0", "admin_port": 9001}
    assert targets(rec) == [("3", "http://127.0.0.1:9001")]
    two = {"version": 4, "url": "http://h:1", "versions": [{"version": 3, "url": "http://h:2"}]}
    assert targets(two) == [("4", "http://h:1"), ("3", "http://h:2")]


def emf_points(client: Any, version: str, *, requests: int, errors: int, rows: float) -> None:
    dims = [{"Name": "Model", "Value": "iris"}, {"Name": "Version", "Value": version}]
    now = datetime.now(UTC)
    client.put_metric_data(Namespace="slml", MetricData=[
        {"MetricName": "Requests", "Dimensions": dims, "Value": requests, "Timestamp": now},
        {"MetricName": "Errors", "Dimensions": dims, "Value": errors, "Timestamp": now},
        {"MetricName": "BatchRows", "Dimensions": dims, "Value": rows, "Timestamp": now},
    ])  # fmt: skip


@mock_aws
def test_cloudwatch_counts_per_version():
    client = boto3.client("cloudwatch", region_name="us-east-1")
    emf_points(client, "7", requests=90, errors=9, rows=3)
    emf_points(client, "8", requests=10, errors=0, rows=5)
    got = read(client, "iris", window_s=3600, percentiles=False,
               now=datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
    assert [(m.version, m.requests, m.errors, m.batch_rows) for m in got] == [
        ("7", 90, 9, 3.0), ("8", 10, 0, 5.0)]  # fmt: skip
    assert got[0].error_rate == pytest.approx(0.1) and got[0].source == "cloudwatch"
    assert read(client, "other-model", window_s=3600) == []


class Recorded:
    """A CloudWatch client that answers GetMetricData from a recorded response."""

    def __init__(self, answer: dict) -> None:
        self.answer, self.calls = answer, []

    def get_metric_data(self, **kwargs: Any) -> dict:
        self.calls.append(kwargs)
        return self.answer


def test_cloudwatch_percentiles_from_a_recorded_answer():
    answer = {"MetricDataResults": [
        {"Id": "v0_requests", "Label": "Requests", "Timestamps": [], "Values": [200.0]},
        {"Id": "v0_errors", "Values": [2.0]}, {"Id": "v0_rows", "Values": [1.5]},
        {"Id": "v0_p50", "Values": [4.25]}, {"Id": "v0_p99", "Values": [31.0]},
    ], "Messages": []}  # fmt: skip
    client = Recorded(answer)
    (got,) = read(client, "iris", window_s=600, version_list=["12"])
    assert (got.p50_ms, got.p99_ms, got.requests, got.errors) == (4.25, 31.0, 200, 2)
    stats = {q["Id"]: q["MetricStat"]["Stat"] for q in client.calls[0]["MetricDataQueries"]}
    assert stats == {"v0_requests": "Sum", "v0_errors": "Sum", "v0_rows": "Average",
                     "v0_p50": "p50", "v0_p99": "p99"}  # fmt: skip


def test_query_period_is_whole_minutes():
    (first, *_) = queries("iris", ["1"], 90)
    assert first["MetricStat"]["Period"] == 120


def test_capture_grant_is_put_object_under_the_prefix_only():
    import json

    doc = json.loads(capture_write_policy(json.dumps({"sink": "s3://cap/iris/prod/"})) or "")
    (stmt,) = doc["Statement"]
    assert stmt["Action"] == ["s3:PutObject"]
    assert stmt["Resource"] == ["arn:aws:s3:::cap/iris/prod/*"]
    assert capture_write_policy(json.dumps({"sink": "/var/cap"})) is None
    assert capture_write_policy(None) is None
