"""Cloud Run revisions' figures from Cloud Monitoring, through a recorded transport
(the answers have the shape of projects.timeSeries.list)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from slml.errors import DeployError
from slml.metrics.cloudmonitoring import read

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def series(rev: str, value: dict, **metric_labels: str) -> dict:
    point = {"interval": {"endTime": "2026-12-01T12:00:00Z"}, "value": value}
    return {"metric": {"type": "x", "labels": metric_labels},
            "resource": {"type": "cloud_run_revision", "labels": {"revision_name": rev}},
            "points": [point]}  # fmt: skip


def answer(request: httpx.Request) -> httpx.Response:
    params = request.url.params
    assert request.headers["authorization"] == "Bearer tok"
    assert 'resource.labels.service_name="iris-dev"' in params["filter"]
    assert params["interval.startTime"] == "2026-12-01T11:00:00Z"
    if "request_count" in params["filter"]:
        assert params["aggregation.crossSeriesReducer"] == "REDUCE_SUM"
        assert params.get_list("aggregation.groupByFields") == [
            "resource.label.revision_name", "metric.label.response_code_class"]  # fmt: skip
        if "pageToken" not in params:  # two pages
            page = [series("iris-dev-00002-abc", {"int64Value": "180"},
                           response_code_class="2xx")]  # fmt: skip
            return httpx.Response(200, json={"timeSeries": page, "nextPageToken": "p2"})
        page = [
            series("iris-dev-00002-abc", {"int64Value": "20"}, response_code_class="5xx"),
            series("iris-dev-00003-def", {"int64Value": "10"}, response_code_class="2xx"),
        ]
        return httpx.Response(200, json={"timeSeries": page})
    q = params["aggregation.crossSeriesReducer"].removeprefix("REDUCE_PERCENTILE_")
    ms = {"50": 12.5, "99": 80.0}[q]
    page = [series("iris-dev-00002-abc", {"doubleValue": ms})]
    return httpx.Response(200, json={"timeSeries": page})


def test_counts_errors_and_percentiles_per_revision():
    client = httpx.Client(transport=httpx.MockTransport(answer))
    got = read(client, "tok", project="p", service="iris-dev", region="europe-west1", now=NOW)
    old, new = got
    assert (old.version, old.requests, old.errors, old.p50_ms, old.p99_ms) == (
        "iris-dev-00002-abc", 200, 20, 12.5, 80.0)  # fmt: skip
    assert old.error_rate == pytest.approx(0.1) and old.errors_by_code == {"5xx": 20}
    assert (new.version, new.requests, new.p99_ms) == ("iris-dev-00003-def", 10, None)


def test_a_refusal_is_a_typed_error_with_the_role_to_ask_for():
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403, text="no")))
    with pytest.raises(DeployError, match="403") as info:
        read(client, "tok", project="p", service="s", region="r", now=NOW)
    assert "roles/monitoring.viewer" in (info.value.hint or "")
