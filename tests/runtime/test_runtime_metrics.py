"""/metrics counts predictions per version; the Lambda handler prints one EMF line per
invocation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slml.runtime.app import create_app
from slml.runtime.lambda_handler import make_handler
from slml.runtime.metrics import RuntimeMetrics
from tests.runtime.runtime_support import make_client
from tests.runtime.test_lambda_handler import Context, answer, http_v2

ROW = [5.1, 3.5, 1.4, 0.2]


def series(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus exposition (fails when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{text}")


def test_metrics_count_requests_errors_latency_and_batch_rows(_iris_artifact_master: Path):
    client = make_client(_iris_artifact_master)
    for _ in range(3):
        assert client.post("/predict", json={"instances": [ROW, ROW]}).status_code == 200
    assert client.post("/predict", content=b"{nope").status_code == 400
    assert client.get("/healthz").status_code == 200  # not a prediction: not counted
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    version = client.get("/healthz").json()["version"]
    assert series(text, "slml_requests_total", status="200", version=version) == 3
    assert series(text, "slml_requests_total", status="400") == 1
    assert series(text, "slml_errors_total", code="invalid_json") == 1
    assert series(text, "slml_request_duration_seconds_count") == 4
    assert series(text, "slml_request_duration_seconds_bucket", le="+Inf") == 4
    assert series(text, "slml_batch_rows_bucket", le="1.0") == 0
    assert series(text, "slml_batch_rows_bucket", le="2.0") == 3
    assert series(text, "slml_batch_rows_sum") == 6
    assert series(text, "slml_capture_dropped_total") == 0
    # every sample line is `name{labels} value`
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r"slml_\w+\{[^}]*\} [0-9.e+-]+", line), line


def test_metrics_need_the_key_when_auth_is_on(_iris_artifact_master: Path):
    client = make_client(_iris_artifact_master, api_key="s3cret")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"x-api-key": "s3cret"}).status_code == 200


def test_a_model_crash_is_counted_as_model_error():
    metrics = RuntimeMetrics("m", "7")
    metrics.observe("/predict", 500, 0.02, {"error_code": "model_error"})
    metrics.observe("/invocations", 503, 0.001, {})
    metrics.observe("/metrics", 200, 0.001, {})
    text = metrics.prometheus()
    assert series(text, "slml_errors_total", code="model_error", version="7") == 1
    assert series(text, "slml_errors_total", code="http_503") == 1
    assert series(text, "slml_request_duration_seconds_count") == 2


def test_lambda_prints_one_emf_line_per_invocation(
    _iris_artifact_master: Path, capsys: pytest.CaptureFixture[str]
):
    handler = make_handler(create_app(_iris_artifact_master))
    body = json.dumps({"instances": [ROW, ROW, ROW]})
    status, _ = answer(handler(http_v2("POST", "/predict", body), Context()))
    assert status == 200
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert len(lines) == 1
    emf = lines[0]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "slml"
    assert directive["Dimensions"] == [["Model", "Version"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"Requests", "Errors", "Latency", "BatchRows"}
    assert all(name in emf for name in names)  # each metric has its value at the root
    assert emf["Requests"] == 1 and emf["Errors"] == 0 and emf["BatchRows"] == [3]
    assert emf["Latency"][0] > 0
    status, _ = answer(handler(http_v2("GET", "/healthz", None), Context()))
    assert status == 200
    assert '"_aws"' not in capsys.readouterr().out  # nothing to report: no line


def test_emf_reports_errors_and_resets():
    metrics = RuntimeMetrics("m", "2", keep_values=True)
    metrics.observe("/predict", 422, 0.004, {"batch_size": 5, "error_code": "invalid_input"})
    emf = json.loads(metrics.emf_line(now=1_700_000_000.0) or "")
    assert emf["Errors"] == 1 and "BatchRows" not in emf
    assert emf["_aws"]["Timestamp"] == 1_700_000_000_000
    assert metrics.emf_line() is None


class _Model:
    name, version = "iris", "1.2"


def test_the_version_label(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SLML_VERSION", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    assert RuntimeMetrics.for_model(_Model()).version == "1.2"  # unpublished: the manifest's
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "14")
    assert RuntimeMetrics.for_model(_Model()).version == "14"
    monkeypatch.setenv("SLML_VERSION", "3")
    assert RuntimeMetrics.for_model(_Model()).version == "3"
