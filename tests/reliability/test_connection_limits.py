"""Connection abuse against a real server process over real sockets: silent, slow-header
and slow-body connections are closed within their timeouts (408 where a request began),
request-line and head limits hold however the bytes arrive (414 / 431), an early 413 is
read by a client that sends its whole body, and ``/healthz`` keeps answering with 600
idle connections open under a 512-descriptor limit."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.procs import Server, free_port, http_status, start_server
from tests.reliability.conftest import RawResponse, port_of, raw_request, serve_command
from tests.reliability.test_hostile_input import _assert_error, _assert_still_serving

IDLE, HEADER, BODY = 1.0, 2.0, 2.0
SLACK = 1.5  # scheduling on a shared 2-core machine
TIMEOUTS = {
    "SLML_IDLE_TIMEOUT": str(IDLE),
    "SLML_HEADER_TIMEOUT": str(HEADER),
    "SLML_BODY_TIMEOUT": str(BODY),
}
PREDICT_HEAD = (
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 40\r\n\r\n"
)


@contextlib.contextmanager
def _server(model: Path, log: Path, env: dict[str, str], cmd: list[str] | None = None):
    port = int(cmd[cmd.index("--port") + 1]) if cmd else free_port()
    server = start_server(
        cmd or serve_command(model, port),
        url=f"http://127.0.0.1:{port}",
        log=log,
        env={**os.environ, **env},
    )
    try:
        yield server
    finally:
        server.stop()


# every limit holds on both HTTP parsers the runtime can run on (slml.runtime.protocol)
PARSERS = ["h11", "httptools"]


@pytest.fixture(scope="module", params=PARSERS)
def timed_server(module_artifact: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    log = module_artifact.parent / f"timed-{request.param}.log"
    with _server(module_artifact, log, {**TIMEOUTS, "SLML_HTTP": request.param}) as server:
        yield server


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=10)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    start, chunks = time.monotonic(), []
    sock.settimeout(limit)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - start


def _parse(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return RawResponse(status=int(lines[0].split()[1]), headers=headers, body=body)


def test_silent_connection_is_closed_after_the_idle_timeout(timed_server: Server) -> None:
    with _connect(timed_server) as sock:
        data, took = _read_until_closed(sock, IDLE + 10)
    assert data == b""
    assert IDLE * 0.8 <= took <= IDLE + SLACK, took


def test_kept_alive_connection_is_closed_after_the_idle_timeout(timed_server: Server) -> None:
    with _connect(timed_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"}"):  # the whole JSON answer, the connection kept
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        data, took = _read_until_closed(sock, IDLE + 10)
    assert data == b"" and took <= IDLE + SLACK, took


def _trickle(sock: socket.socket, data: bytes, every: float, until: float) -> float:
    """Send ``data`` a byte at a time, every ``every`` seconds, until the server answers
    or closes (or ``until`` seconds pass); returns the seconds until then."""
    start = time.monotonic()
    for byte in data:
        if time.monotonic() - start > until or select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(every)
    select.select([sock], [], [], max(0.0, until - (time.monotonic() - start)))
    return time.monotonic() - start


def test_slow_header_is_408_within_the_header_timeout(timed_server: Server) -> None:
    with _connect(timed_server) as sock:
        took = _trickle(sock, PREDICT_HEAD, every=0.25, until=HEADER + 5)
        data, _ = _read_until_closed(sock, 10)
    _assert_error(_parse(data), 408, "request_timeout")
    assert HEADER * 0.8 <= took <= HEADER + SLACK, took


def test_slow_body_is_408_within_the_body_timeout(timed_server: Server) -> None:
    with _connect(timed_server) as sock:
        sock.sendall(PREDICT_HEAD)
        took = _trickle(
            sock, b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}   ', every=0.25, until=BODY + 5
        )
        data, _ = _read_until_closed(sock, 10)
    resp = _parse(data)
    _assert_error(resp, 408, "request_timeout")
    assert resp.headers["x-request-id"] == resp.json()["error"]["request_id"]
    assert BODY * 0.8 <= took <= BODY + SLACK, took
    _assert_still_serving(timed_server)


def _send_in(sock: socket.socket, data: bytes, pieces: int) -> None:
    step = max(1, len(data) // pieces)
    with contextlib.suppress(OSError):
        for i in range(0, len(data), step):
            sock.sendall(data[i : i + step])
            if pieces > 1:
                time.sleep(0.002)


LONG_LINE = b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
LONG_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 100_000 + b"\r\n\r\n"
MANY_HEADERS = (
    b"GET /healthz HTTP/1.1\r\n"
    + b"".join(f"X-H{i}: {'v' * 40}\r\n".encode() for i in range(1000))
    + b"\r\n"
)


@pytest.mark.parametrize("pieces", [1, 50], ids=["one_read", "many_reads"])
@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (LONG_LINE, 414, "uri_too_long"),
        (LONG_HEAD, 431, "headers_too_large"),
        (MANY_HEADERS, 431, "headers_too_large"),
    ],
    ids=["request_line_100k", "header_100k", "headers_1000"],
)
def test_head_limits_hold_however_the_bytes_arrive(
    timed_server: Server, request_bytes: bytes, status: int, code: str, pieces: int
) -> None:
    with _connect(timed_server) as sock:
        _send_in(sock, request_bytes, pieces)
        data, _ = _read_until_closed(sock, 10)
    _assert_error(_parse(data), status, code)


@pytest.mark.parametrize("keep_alive", [False, True], ids=["connection_close", "keep_alive"])
def test_seven_megabyte_body_with_length_reads_the_413(
    timed_server: Server, keep_alive: bool
) -> None:
    """The server answers before reading the body; the client sends all of it and only
    then reads: it must get the 413, not a reset (and the connection then ends)."""
    row = b"[5.1, 3.5, 1.4, 0.2],"
    body = b'{"instances": [' + row * (7 * 1024 * 1024 // len(row)) + b"[1, 2, 3, 4]]}"
    connection = b"" if keep_alive else b"Connection: close\r\n"
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + connection
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    with _connect(timed_server) as sock:
        sock.sendall(head + body)  # must not fail: the server drains
        data, _ = _read_until_closed(sock, 10)
    _assert_error(_parse(data), 413, "payload_too_large")


def test_seven_megabyte_body_through_raw_request_is_413(timed_server: Server) -> None:
    row = "[5.1, 3.5, 1.4, 0.2],"
    body = ('{"instances": [' + row * (7 * 1024 * 1024 // len(row)) + "[1, 2, 3, 4]]}").encode()
    resp = raw_request(
        port_of(timed_server), "POST", "/predict", body=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    _assert_error(resp, 413, "payload_too_large")


def test_malformed_http_is_a_json_400(timed_server: Server) -> None:
    with _connect(timed_server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}")
        data, _ = _read_until_closed(sock, 10)
    _assert_error(_parse(data), 400, "invalid_http")


def test_pipelined_requests_are_all_answered(timed_server: Server) -> None:
    with _connect(timed_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + b"GET /ping HTTP/1.1\r\n"
                     b"Host: x\r\nConnection: close\r\n\r\n")  # fmt: skip
        data, _ = _read_until_closed(sock, 10)
    assert data.count(b"HTTP/1.1 200 OK") == 3, data


def test_a_pipelined_head_over_the_limit_is_431(timed_server: Server) -> None:
    """The second request's head begins in the read that ends the first, then grows
    past the limit in later reads: the first is answered, the second gets the 431."""
    with _connect(timed_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        time.sleep(0.2)
        _send_in(sock, b"X-Big: " + b"b" * 100_000 + b"\r\n\r\n", 50)
        data, _ = _read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 200 OK"), data[:200]
    second = data[data.index(b"HTTP/1.1", 10) :]
    _assert_error(_parse(second), 431, "headers_too_large")


CAP = 4


@pytest.fixture(scope="module", params=PARSERS)
def capped_server(module_artifact: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    env = {**TIMEOUTS, "SLML_IDLE_TIMEOUT": "30", "SLML_BODY_TIMEOUT": "30",
           "SLML_MAX_CONNECTIONS": str(CAP), "SLML_HTTP": request.param}  # fmt: skip
    log = module_artifact.parent / f"capped-{request.param}.log"
    with _server(module_artifact, log, env) as server:
        yield server


def test_over_the_cap_the_oldest_idle_connection_makes_room(capped_server: Server) -> None:
    idle = [_connect(capped_server) for _ in range(CAP)]
    try:
        time.sleep(0.3)
        assert http_status(capped_server.url + "/healthz", timeout=5) == 200
        time.sleep(0.3)
        assert _closed_by_server(idle) >= 1  # the oldest went to make room
        assert _closed_by_server(idle[1:]) == 0
    finally:
        for sock in idle:
            sock.close()


def test_over_the_cap_with_none_idle_the_newcomer_gets_a_json_503(capped_server: Server):
    busy = [_connect(capped_server) for _ in range(CAP)]
    try:
        for sock in busy:  # each one mid-body: in a request, not idle
            sock.sendall(PREDICT_HEAD + b'{"instances"')
        time.sleep(0.3)
        with _connect(capped_server) as newcomer:
            newcomer.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data, _ = _read_until_closed(newcomer, 10)
        resp = _parse(data)
        _assert_error(resp, 503, "overloaded")
        assert resp.headers["retry-after"] == "1"
    finally:
        for sock in busy:
            sock.close()
    time.sleep(0.3)
    assert http_status(capped_server.url + "/healthz", timeout=5) == 200


@pytest.mark.parametrize("parser", PARSERS)
def test_sigterm_with_lingering_and_half_sent_connections_exits_0_promptly(
    module_artifact: Path, parser: str
) -> None:
    log = module_artifact.parent / f"sigterm-{parser}.log"
    with _server(module_artifact, log, {"SLML_HTTP": parser}) as server:
        socks = [_connect(server) for _ in range(9)]
        try:
            for sock in socks[:3]:  # answered 413 early, the body still coming: lingering
                sock.sendall(PREDICT_HEAD.replace(b"40", b"99999999") + b"x" * 1000)
            for sock in socks[3:6]:  # half a request head
                sock.sendall(b"GET /heal")
            time.sleep(0.5)
            start = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(15) == 0
            took = time.monotonic() - start
        finally:
            for sock in socks:
                sock.close()
    assert took < 5.0, took


FD_LIMIT = 512
IDLE_CONNECTIONS = 600


def _limited_serve_command(model: Path, port: int) -> list[str]:
    """The server with RLIMIT_NOFILE lowered in its own process before it starts."""
    code = (
        "import os, resource, sys;"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT}));"
        "os.execv(sys.executable, sys.argv[1:])"
    )
    return [sys.executable, "-c", code, *serve_command(model, port)]


def _open_idle(port: int, count: int) -> list[socket.socket]:
    socks = []
    with contextlib.suppress(OSError):
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    return socks


def _closed_by_server(socks: list[socket.socket]) -> int:
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            closed += sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


@pytest.mark.slow
def test_healthz_answers_with_600_idle_connections_under_512_descriptors(
    module_artifact: Path,
) -> None:
    log = module_artifact.parent / "fdlimit.log"
    port = free_port()
    cmd = _limited_serve_command(module_artifact, port)
    socks: list[socket.socket] = []
    with _server(module_artifact, log, {"SLML_IDLE_TIMEOUT": "60"}, cmd=cmd) as server:
        socks = _open_idle(port, IDLE_CONNECTIONS)
        try:
            statuses, slowest = [], 0.0
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                start = time.monotonic()
                statuses.append(http_status(server.url + "/healthz", timeout=5))
                slowest = max(slowest, time.monotonic() - start)
                time.sleep(0.3)
            assert server.proc.poll() is None
            figures = {"opened": len(socks), "closed_by_server": _closed_by_server(socks)}
        finally:
            for sock in socks:
                sock.close()
        _assert_still_serving(server)
    figures |= {"polls": len(statuses), "slowest_s": round(slowest, 2),
                "log_bytes": log.stat().st_size}  # fmt: skip
    print("fd-limit figures:", json.dumps(figures))
    assert figures["opened"] == IDLE_CONNECTIONS, figures
    assert statuses and all(s == 200 for s in statuses), (statuses, figures)
    assert slowest < 3.0, figures
    assert figures["log_bytes"] < 1_000_000, figures
