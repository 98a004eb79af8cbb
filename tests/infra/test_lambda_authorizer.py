"""The API-key authorizer on the event API Gateway sends it (payload 2.0): the HTTP API
proxy event of aws-sam-cli (tests/fixtures/events) plus the authorizer's own fields, as
the API Gateway developer guide's "Lambda authorizer payload format 2.0" lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slml.infra import lambda_authorizer

EVENTS = Path(__file__).parents[1] / "fixtures" / "events"


def authorizer_event(key: str | None) -> dict:
    event = json.loads((EVENTS / "apigw-http-api-v2.json").read_text())
    event.pop("body", None)  # authorizers get no body
    event.update(
        type="REQUEST",
        routeArn="arn:aws:execute-api:us-east-1:123456789012:abc123/$default/POST/predict",
        identitySource=[key] if key is not None else [],
    )
    if key is not None:
        event["headers"]["x-api-key"] = key
    return event


@pytest.mark.parametrize(
    ("configured", "sent", "allowed"),
    [
        ("s3cret-key", "s3cret-key", True),
        ("s3cret-key", "s3cret-kex", False),
        ("s3cret-key", "", False),
        ("s3cret-key", None, False),
        ("", "", False),  # an empty key authorizes nobody
        ("", "anything", False),
    ],
)
def test_authorizes_only_the_configured_key(monkeypatch, configured, sent, allowed):
    monkeypatch.setenv("SLML_API_KEY", configured)
    assert lambda_authorizer.handler(authorizer_event(sent)) == {"isAuthorized": allowed}


def test_no_key_configured_denies(monkeypatch):
    monkeypatch.delenv("SLML_API_KEY", raising=False)
    assert lambda_authorizer.handler(authorizer_event("x")) == {"isAuthorized": False}


def test_it_imports_nothing_but_the_stdlib():
    source = Path(lambda_authorizer.__file__).read_text()
    imports = {
        line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))
    }
    assert imports <= {"__future__", "hmac", "os", "typing"}
