"""Guards of the serving runtime: the API key covers everything but health checks and is
never turned off by an empty value, the concurrency limit answers a JSON 503, log lines
carry ``severity``, repeated errors are rate-limited, and the connection limits parse
and check what they should."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from runtime_support import make_client, write_python_artifact

from benchmarks.procs import free_port, start_server
from slml.runtime.app import create_app
from slml.runtime.limits import Limits, limits_from_env
from slml.runtime.log_handlers import RateLimitFilter
from slml.runtime.logs import RateLimiter, log_event
from slml.runtime.protocol import error_response, head_error, parser_name, protocol_class

ROOT = Path(__file__).resolve().parents[2]
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def test_api_key_guards_metadata_and_openapi_but_not_health(iris_artifact):
    client = make_client(iris_artifact, api_key="s3cret")
    for path in ("/metadata", "/openapi.json"):
        for headers in ({}, {"x-api-key": "wrong"}):
            r = client.get(path, headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized"), path
            assert "created_by" not in r.text and "requirements" not in r.text
        assert client.get(path, headers={"x-api-key": "s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize("value", ["", " ", "\n", "\t \r\n"])
def test_blank_api_key_in_environment_refuses_to_start(iris_artifact, monkeypatch, value):
    monkeypatch.setenv("SLML_API_KEY", value)
    with pytest.raises(ValueError, match="SLML_API_KEY is set but empty"):
        create_app(iris_artifact)


def test_blank_api_key_argument_is_refused(iris_artifact):
    with pytest.raises(ValueError, match="api_key is set but empty"):
        create_app(iris_artifact, api_key="  ")


def test_api_key_with_a_trailing_newline_still_checks(iris_artifact, monkeypatch):
    """A key file's newline neither disables the check nor locks the key out."""
    monkeypatch.setenv("SLML_API_KEY", "k3y\n")
    client = make_client(iris_artifact)
    assert client.post("/predict", json=ROW).status_code == 401
    assert client.post("/predict", json=ROW, headers={"x-api-key": "k3y"}).status_code == 200


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "slml.runtime.serve", "--model", "/nonexistent", "--port", "0"]
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLML_API_KEY": " "}, "SLML_API_KEY is set but empty"),
        ({"SLML_API_KEY": ""}, "SLML_API_KEY is set but empty"),
        ({"SLML_HEADER_TIMEOUT": "soon"}, "SLML_HEADER_TIMEOUT='soon' is not a number"),
        ({"SLML_MAX_CONNECTIONS": "0"}, "SLML_MAX_CONNECTIONS='0' must be positive"),
        ({"SLML_HTTP": "nghttp2"}, "SLML_HTTP='nghttp2' is not one of auto, httptools, h11"),
    ],
)
def test_serve_refuses_bad_settings_before_loading(env, named):
    proc = _serve(env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert named in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_limits_from_env_defaults_and_overrides():
    assert limits_from_env({}) == Limits()
    env = {"SLML_IDLE_TIMEOUT": "2.5", "SLML_BODY_TIMEOUT": "7", "SLML_MAX_HEADER_BYTES": "900"}
    limits = limits_from_env(env)
    assert (limits.idle_timeout, limits.body_timeout, limits.max_header_bytes) == (2.5, 7, 900)
    with pytest.raises(ValueError, match=r"SLML_MAX_REQUEST_LINE='1\.5' is not a whole number"):
        limits_from_env({"SLML_MAX_REQUEST_LINE": "1.5"})


def test_the_parser_is_httptools_when_installed_unless_h11_is_asked_for(monkeypatch):
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert limits_from_env({"SLML_HTTP": "h11"}).parser == "h11"
    assert issubclass(protocol_class(Limits(), 10), HttpToolsProtocol)  # auto, installed
    assert issubclass(protocol_class(Limits(parser="httptools"), 10), HttpToolsProtocol)
    h11_class = protocol_class(Limits(parser="h11"), 10)
    assert issubclass(h11_class, H11Protocol) and not issubclass(h11_class, HttpToolsProtocol)
    real_find_spec = importlib.util.find_spec

    def without_httptools(name: str, *args: object) -> object:
        return None if name == "httptools" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_httptools)
    assert parser_name("auto") == "h11"  # the pure-Python fallback
    with pytest.raises(ValueError, match="SLML_HTTP=httptools but httptools is not installed"):
        parser_name("httptools")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"GET /" + b"a" * 200, 414),  # incomplete and already over: no need to wait
        (b"GET /" + b"a" * 80 + b" HTTP/1.1\r\n", None),
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"v" * 300, 431),
        (b"GET / HTTP/1.1\r\nX: 1\r\n\r\n" + b"body " * 100, None),  # body after the head
        (b"\r\n\r\nGET / HTTP/1.1\n" + b"X: 1\n\n", None),  # bare LF, leading blank lines
    ],
)
def test_head_error_is_independent_of_what_else_was_read(head, expected):
    limits = Limits(max_request_line=100, max_header_bytes=200)
    problem = head_error(head, limits)
    assert (problem[0] if problem else None) == expected


def test_error_response_is_complete_http_with_json_body():
    raw = error_response(503, "overloaded", "busy", "rid-1")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"retry-after: 1" in head and b"x-request-id: rid-1" in head
    assert f"content-length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "error": {"code": "overloaded", "message": "busy", "request_id": "rid-1"}
    }


def test_log_lines_carry_severity_for_cloud_logging(python_artifact, log_records):
    logger, records = log_records
    client = make_client(python_artifact, logger=logger)
    client.post("/predict", json={"instances": [{"a": 1.0, "b": 2}]})
    client.post("/predict", json={"instances": [{"a": -1.0, "b": 2}]})  # the model raises
    by_event = {rec["event"]: rec for rec in records}
    assert (by_event["request"]["severity"], by_event["request"]["level"]) == ("INFO", "info")
    assert by_event["model_error"]["severity"] == "ERROR"


CRASHING = """
    class Model:
        def predict(self, rows):
            raise RuntimeError("guards-test: always broken")
"""


def test_repeated_crash_tracebacks_are_rate_limited(tmp_path, log_records):
    logger, records = log_records
    artifact = write_python_artifact(tmp_path / "broken", CRASHING, module="slml_guards_broken")
    client = make_client(artifact, logger=logger)
    for _ in range(12):
        assert client.post("/predict", json={"instances": [[1]]}).status_code == 500
    crashes = [rec for rec in records if rec["event"] == "model_error"]
    assert len(crashes) == 12  # every request id stays findable in the log
    with_tb = [rec for rec in crashes if rec["traceback"].startswith("Traceback")]
    assert len(with_tb) == 5


def test_rate_limiter_counts_what_it_dropped():
    now = [0.0]
    limiter = RateLimiter(burst=2, window=10.0, clock=lambda: now[0])
    assert [limiter.check("k") for _ in range(5)] == [0, 0, None, None, None]
    assert limiter.check("other") == 0
    now[0] = 10.0
    assert limiter.check("k") == 3


def test_rate_limit_filter_and_log_event_limit(log_records):
    logger, records = log_records
    for _ in range(15):
        log_event(logger, logging.WARNING, "flood", limit="guards-flood", n=1)
    assert len(records) == 10
    flt = RateLimitFilter(RateLimiter(burst=1, window=60.0))
    rec = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "accept() failed", None, None)
    info = logging.LogRecord("asyncio", logging.INFO, __file__, 1, "accept() failed", None, None)
    assert flt.filter(rec) and not flt.filter(rec) and flt.filter(info)


SLOW = """
    import time

    class Model:
        def predict(self, rows):
            time.sleep(1.5)
            return [0 for _ in rows]
"""


def test_concurrency_limit_answers_json_503_and_health_stays_up(tmp_path):
    artifact = write_python_artifact(tmp_path / "slow", SLOW, module="slml_guards_slow")
    port = free_port()
    cmd = [sys.executable, "-m", "slml.runtime.serve", "--model", str(artifact),
           "--port", str(port)]  # fmt: skip
    env = {**os.environ, "SLML_MAX_CONCURRENCY": "1"}
    url = f"http://127.0.0.1:{port}"
    server = start_server(cmd, url=url, log=tmp_path / "slow.log", env=env, cwd=ROOT)
    try:
        answers: list[httpx.Response] = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(httpx.post(f"{url}/predict", json=ROW, timeout=30))
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        for thread in threads:
            thread.join(30)
        assert sorted(r.status_code for r in answers) == [200, 503], [r.text for r in answers]
        overloaded = next(r for r in answers if r.status_code == 503)
        error = overloaded.json()["error"]
        assert error["code"] == "overloaded" and error["request_id"]
        assert overloaded.headers["x-request-id"] == error["request_id"]
        assert overloaded.headers["retry-after"] == "1"
    finally:
        server.stop()
