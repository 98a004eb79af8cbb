"""The fixture events (tests/fixtures/events/, AWS's own shapes), changed only in method,
path, headers and body, with what the function must answer to each."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parents[1] / "fixtures" / "events"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
PAYLOAD = json.dumps({"instances": ROWS})


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def http_v2(method: str, path: str, body: str | None, *, b64: bool = False,
            base: str = "apigw-http-api-v2.json") -> dict:  # fmt: skip
    event = copy.deepcopy(load(base))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = ""
    event["headers"] = {"content-type": "application/json", "host": "example.amazonaws.com"}
    event["body"] = base64.b64encode(body.encode()).decode() if (b64 and body) else body
    event["isBase64Encoded"] = b64
    return event


def rest_v1(method: str, path: str, body: str | None) -> dict:
    event = copy.deepcopy(load("apigw-rest-v1.json"))
    event["path"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["headers"]["Content-Type"] = "application/json"
    event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    event["body"] = body
    event["isBase64Encoded"] = False
    return event


@dataclass(frozen=True)
class Case:
    name: str
    event: dict
    status: int
    predictions: list | None = None  # checked when set
    error_code: str | None = None


def cases(predictions: list) -> list[Case]:
    """Every fixture event: predictions through each, a health check, a 4xx, a 404."""
    return [
        Case("http-api-v2", http_v2("POST", "/predict", PAYLOAD), 200, predictions),
        Case("http-api-v2-base64", http_v2("POST", "/predict", PAYLOAD, b64=True), 200,
             predictions),
        Case("rest-api-v1", rest_v1("POST", "/predict", PAYLOAD), 200, predictions),
        Case("function-url", http_v2("POST", "/predict", PAYLOAD, base="lambda-function-url.json"),
             200, predictions),
        Case("healthz", http_v2("GET", "/healthz", None), 200),
        Case("bad-json", rest_v1("POST", "/predict", "{not json"), 400, error_code="invalid_json"),
        Case("unmodified-sam-event", load("apigw-http-api-v2.json"), 404),
    ]


def decode(response: dict) -> tuple[int, dict[str, str], Any]:
    """``(status, headers, JSON body)`` of an API Gateway proxy response."""
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, json.loads(body)


def check(case: Case, response: dict) -> None:
    status, headers, body = decode(response)
    assert status == case.status, (case.name, status, body)
    assert headers.get("content-type", "").startswith("application/json"), (case.name, headers)
    assert headers.get("x-request-id"), (case.name, headers)
    if case.predictions is not None:
        assert body["predictions"] == case.predictions, (case.name, body)
    if case.error_code is not None:
        assert body["error"]["code"] == case.error_code, (case.name, body)
    if status >= 400:
        assert set(body["error"]) >= {"code", "message", "request_id"}, (case.name, body)
