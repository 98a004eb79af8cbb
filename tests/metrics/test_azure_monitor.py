"""The Function App's request totals from Azure Monitor, through a recorded transport
(the answer has the shape of Microsoft.Insights/metrics)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from slml.errors import DeployError
from slml.metrics.azuremonitor import read

APP = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/iris-dev"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def metric(name: str, *totals: float | None) -> dict:
    data = [{"timeStamp": "2026-12-01T11:00:00Z", "total": t} for t in totals]
    return {"name": {"value": name}, "unit": "Count", "timeseries": [{"data": data}]}


def test_totals_over_the_window():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"{APP}/providers/Microsoft.Insights/metrics"
        assert request.url.params["metricnames"] == "Requests,Http4xx,Http5xx"
        assert request.url.params["timespan"] == "2026-12-01T11:00:00Z/2026-12-01T12:00:00Z"
        body = {"value": [metric("Requests", 60, 40, None), metric("Http4xx", 3),
                          metric("Http5xx", 0, 2)]}  # fmt: skip
        return httpx.Response(200, json=body)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    got = read(client, "tok", app_id=APP, version="4", now=NOW)
    assert (got.version, got.requests, got.errors, got.p99_ms) == ("4", 100, 5, None)
    assert got.errors_by_code == {"4xx": 3, "5xx": 2} and got.error_rate == pytest.approx(0.05)


def test_a_refusal_names_the_role():
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403)))
    with pytest.raises(DeployError, match="403") as info:
        read(client, "tok", app_id=APP, version="1", now=NOW)
    assert "Monitoring Reader" in (info.value.hint or "")
