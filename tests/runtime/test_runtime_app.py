"""The app over Starlette's TestClient: every bad-input class gets its 4xx, crashes 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from runtime_support import make_client

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
JSON = {"content-type": "application/json"}


def post(client, body, path="/predict", headers=JSON):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=data, headers=headers)


def test_predict_rows_objects_and_columns_agree(iris_client):
    by_rows = post(iris_client, {"instances": IRIS_ROWS})
    assert by_rows.status_code == 200
    body = by_rows.json()
    assert body == {"predictions": [0, 2, 1], "model": "iris", "version": "1"}
    objects = [dict(zip(NAMES, row, strict=True)) for row in IRIS_ROWS]
    columns = {name: [row[i] for row in IRIS_ROWS] for i, name in enumerate(NAMES)}
    assert post(iris_client, {"instances": objects}).json() == body
    assert post(iris_client, {"inputs": columns}).json() == body
    assert post(iris_client, {"inputs": IRIS_ROWS}).json() == body


def test_charset_and_missing_content_type_are_json(iris_client):
    r = post(
        iris_client,
        {"instances": IRIS_ROWS[:1]},
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200
    r = iris_client.post("/predict", content=json.dumps({"instances": IRIS_ROWS[:1]}).encode())
    assert r.status_code == 200


BAD_INPUTS = [
    # (body bytes or object, status, code, words expected in the message)
    (b'{"instances": [[5.1, 3.5', 400, "invalid_json", "not valid JSON"),
    (b"", 400, "invalid_json", "empty"),
    (b'{"instances": [[5.1, 3.5, 1.4, \xff]]}', 400, "invalid_json", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json", "nested too deeply"),
    (b'{"instances": [[' + b"9" * 5000 + b", 1, 1, 1]]}", 400, "invalid_json", "digits"),
    ([[5.1, 3.5, 1.4, 0.2]], 400, "invalid_request", "instances"),
    ({"rows": IRIS_ROWS}, 400, "invalid_request", "unknown key"),
    ({}, 400, "invalid_request", "neither"),
    ({"instances": IRIS_ROWS, "inputs": {}}, 400, "invalid_request", "both"),
    ({"instances": {"a": 1}}, 400, "invalid_request", "list of rows"),
    ({"instances": []}, 422, "empty_batch", "at least one row"),
    ({"instances": [[5.1, 3.5, 1.4]]}, 422, "invalid_input", "expected 4"),
    ({"instances": [[5.1, 3.5, 1.4, 0.2], [1.0, 2.0]]}, 422, "invalid_input", "row 1"),
    ({"instances": [[5.1, 3.5, 1.4, "0.2"]]}, 422, "invalid_input", "got the string"),
    ({"instances": [[5.1, 3.5, 1.4, True]]}, 422, "invalid_input", "boolean"),
    ({"instances": [[5.1, 3.5, 1.4, None]]}, 422, "invalid_input", "null is not allowed"),
    (b'{"instances": [[5.1, 3.5, 1.4, NaN]]}', 422, "invalid_input", "NaN is not allowed"),
    ({"instances": [[5.1, 3.5, 1.4, -(10**309)]]}, 422, "invalid_input", "out of range"),
    (b'{"instances": [[5.1, 3.5, 1.4, 1e999]]}', 422, "invalid_input", "out of range"),
    ({"instances": [[5.1, 3.5, 1.4, 10**400]]}, 422, "invalid_input", "out of range"),
    ({"instances": [5.1]}, 422, "invalid_input", "must be a list"),
    ({"instances": [{"sepal_length": 1}]}, 422, "invalid_input", "lacks"),
    (
        {"instances": [dict(zip(NAMES, IRIS_ROWS[0], strict=True)) | {"x": 1}]},
        422,
        "invalid_input",
        "unknown 'x'",
    ),
    (
        {"inputs": {"sepal_length": [1.0], "sepal_width": [1.0, 2.0]}},
        422,
        "invalid_input",
        "same length",
    ),
    ({"inputs": {"sepal_length": 1.0}}, 400, "invalid_request", "list of values"),
    ({"instances": [IRIS_ROWS[0]] * 51}, 422, "batch_too_large", "limit of 50"),
]


@pytest.mark.parametrize(("body", "status", "code", "words"), BAD_INPUTS)
def test_bad_input_gets_its_4xx(iris_client, body, status, code, words):
    r = post(iris_client, body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert words in error["message"]
    assert error["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "text/csv",
    ],
)
def test_wrong_content_type_is_415(iris_client, ctype):
    r = post(iris_client, {"instances": IRIS_ROWS}, headers={"content-type": ctype})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"


def test_body_over_limit_is_413_by_header_and_by_stream(iris_artifact):
    client = make_client(iris_artifact, max_body_bytes=100)
    big = json.dumps({"instances": IRIS_ROWS * 10}).encode()
    r = post(client, big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: chunked transfer, refused while streaming
        for i in range(0, len(big), 40):
            yield big[i : i + 40]

    r = client.post("/predict", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert post(client, {"instances": IRIS_ROWS[:1]}).status_code == 200


def test_unknown_route_and_method_are_json(iris_client):
    r = iris_client.get("/nope")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = iris_client.get("/predict")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")


def test_model_crash_is_500_with_request_id_and_next_request_works(python_artifact, log_records):
    logger, records = log_records
    client = make_client(python_artifact, logger=logger)
    r = post(client, {"instances": [[-1.0, 2]]}, headers={**JSON, "x-request-id": "req-42"})
    assert r.status_code == 500
    assert r.json()["error"] == {
        "code": "model_error",
        "message": r.json()["error"]["message"],
        "request_id": "req-42",
    }
    assert "boom" not in r.json()["error"]["message"]  # internals stay in the log
    crash = next(rec for rec in records if rec["event"] == "model_error")
    assert crash["request_id"] == "req-42"
    assert "RuntimeError: boom" in crash["traceback"]
    ok = post(client, {"instances": [{"a": 1.5, "b": 2}]})
    assert ok.status_code == 200
    assert ok.json()["predictions"] == [23.0]


def test_python_flavor_checks_int_columns(python_artifact):
    client = make_client(python_artifact)
    assert post(client, {"inputs": {"a": [1.0], "b": [2.0]}}).json()["predictions"] == [22.0]
    r = post(client, {"inputs": {"a": [1.0], "b": [2.5]}})
    assert r.status_code == 422
    assert "expected an integer (int64)" in r.json()["error"]["message"]


def test_unsigned_model_value_error_is_422_and_nan_output_is_null(unsigned_artifact):
    client = make_client(unsigned_artifact)
    r = post(client, {"instances": [[1, 2, 3]]})
    assert r.status_code == 422
    assert "each row needs exactly 2 values" in r.json()["error"]["message"]
    r = post(client, {"instances": [[0, 2], [3, 2]]})
    assert r.json()["predictions"] == [None, 1.5]


def test_one_json_log_line_per_request(iris_client, log_records):
    _, records = log_records
    post(iris_client, {"instances": IRIS_ROWS})
    post(iris_client, {"instances": []})
    iris_client.get("/healthz")
    requests = [r for r in records if r["event"] == "request"]
    assert [(r["path"], r["status"], r["batch_size"]) for r in requests] == [
        ("/predict", 200, 3),
        ("/predict", 422, None),
        ("/healthz", 200, None),
    ]
    assert all(isinstance(r["latency_ms"], float) and r["request_id"] for r in requests)


def test_request_id_is_honoured_when_sane(iris_client):
    r = iris_client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = iris_client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"
    assert len(r.headers["x-request-id"]) == 32


def test_api_key_guards_predict_but_not_health(iris_artifact):
    client = make_client(iris_artifact, api_key="s3cret")
    body = {"instances": IRIS_ROWS}
    for headers in (JSON, {**JSON, "x-api-key": "wrong"}):
        r = post(client, body, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
        assert post(client, body, "/invocations", headers=headers).status_code == 401
    assert post(client, body, headers={**JSON, "x-api-key": "s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/ping").status_code == 200


def test_api_key_from_environment(iris_artifact, monkeypatch):
    monkeypatch.setenv("SLML_API_KEY", "from-env")
    client = make_client(iris_artifact)
    assert post(client, {"instances": IRIS_ROWS}).status_code == 401
    ok = post(client, {"instances": IRIS_ROWS}, headers={**JSON, "x-api-key": "from-env"})
    assert ok.status_code == 200


def test_sagemaker_ping_and_invocations_json_and_csv(iris_client):
    assert iris_client.get("/ping").status_code == 200
    expected = post(iris_client, {"instances": IRIS_ROWS}).json()
    assert post(iris_client, {"instances": IRIS_ROWS}, "/invocations").json() == expected
    csv_body = "\n".join(",".join(map(str, row)) for row in IRIS_ROWS).encode()
    csv_headers = {"content-type": "text/csv"}
    assert post(iris_client, csv_body, "/invocations", headers=csv_headers).json() == expected
    with_header = (",".join(NAMES) + "\n").encode() + csv_body
    assert post(iris_client, with_header, "/invocations", headers=csv_headers).json() == expected
    r = post(iris_client, b"5.1,3.5,abc,0.2\n", "/invocations", headers=csv_headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_input")
    r = post(iris_client, b"5.1,3.5,1.4\n", "/invocations", headers=csv_headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_input")


def test_healthz_and_metadata(iris_client, iris_artifact: Path):
    assert iris_client.get("/healthz").json() == {"status": "ok", "model": "iris", "version": "1"}
    manifest = json.loads((iris_artifact / "slml-model.json").read_text())
    assert iris_client.get("/metadata").json() == manifest


def test_openapi_document_is_valid_and_describes_the_signature(iris_client):
    doc = iris_client.get("/openapi.json").json()
    schemathesis.openapi.from_dict(doc).validate()  # raises on an invalid OpenAPI 3.0 doc
    request = doc["components"]["schemas"]["PredictRequest"]
    rows = request["oneOf"][0]["properties"]["instances"]["items"]["oneOf"]
    assert rows[0]["minItems"] == rows[0]["maxItems"] == 4
    assert rows[1]["required"] == NAMES
    assert set(doc["paths"]) >= {"/predict", "/invocations", "/healthz", "/ping", "/metadata"}
    assert "text/csv" in doc["paths"]["/invocations"]["post"]["requestBody"]["content"]


def test_openapi_valid_for_unsigned_and_columns_models(unsigned_artifact, python_artifact):
    for artifact in (unsigned_artifact, python_artifact):
        doc = make_client(artifact).get("/openapi.json").json()
        schemathesis.openapi.from_dict(doc).validate()


def test_onnx_model_serves_the_same_predictions(onnx_artifact):
    client = make_client(onnx_artifact)
    r = post(client, {"instances": IRIS_ROWS})
    assert r.json() == {"predictions": [0, 2, 1], "model": "iris-onnx", "version": "1"}
    r = post(client, {"instances": [[5.1, 3.5, 1.4, 1e300]]})  # over float32's range
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_input")
