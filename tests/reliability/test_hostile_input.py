"""Hostile input over real HTTP against a real server process: every request gets a
4xx JSON error (never a 5xx, a hang or a crash) and the server keeps serving.
A tampered artifact is refused at start-up."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks.procs import Server, free_port
from tests.reliability.conftest import RawResponse, port_of, raw_request, serve_command

JSON = {"Content-Type": "application/json"}
ROW = "[5.1, 3.5, 1.4, 0.2]"


def _post(server: Server, body: bytes, headers: dict[str, str] | None = None) -> RawResponse:
    return raw_request(
        port_of(server), "POST", "/predict", body=body, headers=JSON if headers is None else headers
    )


def _assert_error(resp: RawResponse, status: int | tuple[int, ...], code: str | None = None):
    expected = status if isinstance(status, tuple) else (status,)
    assert resp.status in expected, (resp.status, resp.body[:300])
    error = resp.json()["error"]
    assert error["message"] and error["request_id"]
    if code is not None:
        assert error["code"] == code, error


def _assert_still_serving(server: Server) -> None:
    resp = _post(server, f'{{"instances": [{ROW}]}}'.encode())
    assert resp.status == 200, resp.body
    assert len(resp.json()["predictions"]) == 1


NESTED = 100_000
HOSTILE_JSON = {
    "nested_array_100k": b"[" * NESTED + b"]" * NESTED,
    "nested_instances_100k": b'{"instances": ' + b"[" * NESTED + b"]" * NESTED + b"}",
    "nested_object_100k": b'{"a":' * NESTED + b"1" + b"}" * NESTED,
    "float_1e400": b'{"instances": [[1e400, 3.5, 1.4, 0.2]]}',
    "int_10_pow_400": f'{{"instances": [[{10**400}, 3.5, 1.4, 0.2]]}}'.encode(),
    "int_5000_digits": ('{"instances": [[' + "9" * 5000 + ", 3.5, 1.4, 0.2]]}").encode(),
    "nan_literal": b'{"instances": [[NaN, 3.5, 1.4, 0.2]]}',
    "infinity_literal": b'{"instances": [[-Infinity, 3.5, 1.4, 0.2]]}',
    "empty_body": b"",
    "whitespace_body": b"   \n ",
    "not_json": b"instances=1,2,3",
    "truncated_json": b'{"instances": [[5.1, 3.5',
    "json_null": b"null",
    "json_string": b'"hello"',
    "wrong_key": f'{{"rows": [{ROW}]}}'.encode(),
    "empty_batch": b'{"instances": []}',
    "wrong_width": b'{"instances": [[1, 2, 3]]}',
    "string_feature": b'{"instances": [["a", 3.5, 1.4, 0.2]]}',
    "bool_feature": b'{"instances": [[true, 3.5, 1.4, 0.2]]}',
    "object_row": b'{"instances": [{"x": 1}]}',
    "non_utf8": b'{"instances": [[\xff\xfe, 1, 2, 3]]}',
    "utf16_body": f'{{"instances": [{ROW}]}}'.encode("utf-16"),
    "lone_surrogate": b'{"instances": [["\\ud800", 1, 2, 3]]}',
    "nul_bytes": b'{"instances": [[\x00\x00]]}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_hostile_json_gets_4xx(iris_server: Server, name: str) -> None:
    resp = _post(iris_server, HOSTILE_JSON[name])
    assert 400 <= resp.status < 500, (name, resp.status, resp.body[:300])
    _assert_error(resp, resp.status)
    assert resp.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "text/csv",
        "image/png",
    ],
)
def test_wrong_content_type_is_415(iris_server: Server, content_type: str) -> None:
    resp = _post(iris_server, f'{{"instances": [{ROW}]}}'.encode(), {"Content-Type": content_type})
    _assert_error(resp, 415, "unsupported_media_type")


def test_ten_megabyte_body_is_413(iris_server: Server) -> None:
    row = "[5.1, 3.5, 1.4, 0.2],"
    body = ('{"instances": [' + row * (10 * 1024 * 1024 // len(row)) + ROW + "]}").encode()
    assert len(body) > 10 * 1024 * 1024
    _assert_error(_post(iris_server, body), 413, "payload_too_large")


def test_ten_megabyte_chunked_body_without_length_is_413(iris_server: Server) -> None:
    """No Content-Length to refuse up front: the limit must hold on the stream."""
    chunk = b"[5.1, 3.5, 1.4, 0.2]," * 5000
    pieces = [b'{"instances": [', *([chunk] * (10 * 1024 * 1024 // len(chunk) + 1)), b"[1]]}"]
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    headers = {**JSON, "Transfer-Encoding": "chunked"}
    _assert_error(_post(iris_server, body, headers), 413, "payload_too_large")


@pytest.mark.parametrize("length", ["-1", "abc", "99999999999999999999"])
def test_bad_content_length_is_4xx(iris_server: Server, length: str) -> None:
    """A lying Content-Length: uvicorn may refuse it before the app (plain-text 400),
    either way a 4xx and the server lives on."""
    resp = _post(iris_server, b"{}", {**JSON, "Content-Length": length})
    assert 400 <= resp.status < 500, (resp.status, resp.body[:200])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/predict", 405),
        ("PUT", "/predict", 405),
        ("DELETE", "/healthz", 405),
        ("GET", "/nope", 404),
        ("GET", "/" + "a" * 8000, 404),
        ("GET", "/predict/../../etc", 404),
    ],
)
def test_wrong_routes_are_json_4xx(iris_server: Server, method: str, path: str, status: int):
    _assert_error(raw_request(port_of(iris_server), method, path), status)


def test_server_survives_every_hostile_request(iris_server: Server) -> None:
    """Runs after the parametrized cases in this module (same server): still alive,
    still correct."""
    assert iris_server.proc.poll() is None
    _assert_still_serving(iris_server)
    health = raw_request(port_of(iris_server), "GET", "/healthz")
    assert health.status == 200 and health.json()["status"] == "ok"


def test_tampered_artifact_is_refused_at_start(module_artifact: Path, tmp_path: Path) -> None:
    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(module_artifact, tampered)
    model_file = tampered / "model" / "model.joblib"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    proc = subprocess.run(
        serve_command(tampered, free_port()), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode not in (0, None), proc.stdout
    assert "ready" not in proc.stdout
    message = proc.stderr.strip()
    assert "model/model.joblib" in message, message
    assert "Traceback" not in message
    assert len(message.splitlines()) <= 3, message


def test_manifest_with_wrong_hash_entry_is_refused(module_artifact: Path, tmp_path: Path):
    """The other way round: the file intact but the manifest's hash edited."""
    import shutil

    tampered = tmp_path / "edited"
    shutil.copytree(module_artifact, tampered)
    manifest_path = tampered / "slml-model.json"
    manifest = json.loads(manifest_path.read_text())
    key = next(iter(manifest["files"]))
    manifest["files"][key] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    proc = subprocess.run(
        serve_command(tampered, free_port()), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert key in proc.stderr and "Traceback" not in proc.stderr
