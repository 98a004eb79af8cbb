"""Fixtures for the reliability tests: real server processes on loopback, raw HTTP.

Servers run in their own process group and are always stopped (fixtures with finally).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.procs import Server, free_port, start_server
from tests.reliability.deployments import Project, make_project

PYTHON = Path(sys.executable)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> RawResponse:
    """Send one HTTP/1.1 request byte for byte (Connection: close) and read the reply.

    Sending may fail half-way when the server answers early (a 413 before the whole
    body is in); the reply is read anyway, as a real client would."""
    head = {"Host": f"127.0.0.1:{port}", "Connection": "close", **(headers or {})}
    if "Content-Length" not in head and "Transfer-Encoding" not in head:
        head["Content-Length"] = str(len(body))
    raw = f"{method} {path} HTTP/1.1\r\n".encode()
    raw += b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in head.items()) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw + body)
        return _read_reply(sock)


def _read_reply(sock: socket.socket) -> RawResponse:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"no HTTP response, got {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status=int(lines[0].split()[1]), headers=headers, body=body)


def serve_command(model_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        str(PYTHON),
        "-m",
        "slml.runtime.serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        *extra,
    ]


@contextlib.contextmanager
def running_server(model_dir: Path, log: Path, *extra: str) -> Iterator[Server]:
    """``python -m slml.runtime.serve`` on a free loopback port, stopped on exit."""
    port = free_port()
    server = start_server(
        serve_command(model_dir, port, *extra), url=f"http://127.0.0.1:{port}", log=log
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_artifact(tmp_path_factory, _iris_artifact_master: Path) -> Path:
    dest = tmp_path_factory.mktemp("reliability") / "iris"
    shutil.copytree(_iris_artifact_master, dest)
    return dest


@pytest.fixture(scope="module")
def iris_server(module_artifact: Path) -> Iterator[Server]:
    """One runtime server process for a test module."""
    with running_server(module_artifact, module_artifact.parent / "server.log") as server:
        yield server


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def slml_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SLML_CACHE_DIR for the session: environments are built once."""
    return tmp_path_factory.mktemp("slml-cache")


@pytest.fixture
def project(tmp_path: Path, _iris_artifact_master: Path, slml_cache: Path) -> Iterator[Project]:
    """A temporary slml project (local provider) with the iris artifact; destroyed and
    its server processes killed afterwards, whatever happened."""
    proj = make_project(tmp_path / "proj", _iris_artifact_master, slml_cache)
    try:
        yield proj
    finally:
        proj.cleanup()
