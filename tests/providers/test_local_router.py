"""The local router as a real process in front of real (small, stdlib) HTTP servers."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from slml.providers import local_process as proc
from slml.providers.local_router import Route, choose
from slml.state import write_json_atomic


class _Backend(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        status = 500 if b"fail" in body else 200
        data = json.dumps({"version": self.server.name, "echo": json.loads(body or b"{}")})  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args: object) -> None:
        pass


def _backend(name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    server.name = name  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _record(path: Path, traffic: list[tuple[int, float, str, int]], **more: object) -> None:
    write_json_atomic(path, {
        "traffic": [{"version": v, "percent": p, "role": r} for v, p, r, _ in traffic],
        "versions": {str(v): {"version": v, "admin_port": port} for v, _, _, port in traffic},
        **more})  # fmt: skip


@pytest.fixture
def backends() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    one, two = _backend("one"), _backend("two")
    yield one, two
    one.shutdown()
    two.shutdown()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[tuple[Path, str, str, int]]:
    """A router on a free port; yields (record, url, admin url, pid)."""
    record = tmp_path / "record.json"
    _record(record, [])
    port = proc.free_port("127.0.0.1")
    log = tmp_path / "router.log"
    command = proc.router_command(record=record, host="127.0.0.1", port=port,
                                  capture_dir=tmp_path)  # fmt: skip
    pid = proc.spawn(command, cwd=tmp_path, env={"PATH": "/usr/bin", "PYTHONPATH":
                     ":".join(sys.path)}, log_path=log, control=True)  # fmt: skip
    up = proc.wait_healthy(pid, log_path=log, offset=0, host="127.0.0.1", timeout=30)
    try:
        yield record, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{up.admin_port}", pid
    finally:
        proc.stop_server(pid, pid, grace=2.0)


def _wait_routes(admin: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(httpx.get(f"{admin}/metrics").json()["traffic"]) != count:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_weighted_split_errors_and_metrics(router, backends) -> None:
    record, url, admin, _ = router
    one, two = backends
    _record(record, [(1, 75.0, "primary", one.server_port), (2, 25.0, "canary", two.server_port)])
    _wait_routes(admin, 2)
    with httpx.Client() as client:
        seen = Counter(client.post(f"{url}/predict", json={"i": i}).json()["version"]
                       for i in range(400))  # fmt: skip
        assert 0.18 <= seen["two"] / 400 <= 0.32, seen
        assert client.post(f"{url}/predict", json={"fail": 1}).status_code == 500
    metrics = httpx.get(f"{admin}/metrics", params={"window": 30}).json()["versions"]
    assert metrics["1"]["requests"] + metrics["2"]["requests"] == 401
    failed = [v for v in metrics.values() if v["errors"]]
    assert len(failed) == 1 and failed[0]["errors"] == {"500": 1}
    assert failed[0]["window"]["errors_5xx"] == 1 and metrics["1"]["window"]["p99_ms"] > 0


def test_sticky_header_keeps_a_client_on_one_version(router, backends) -> None:
    record, url, admin, _ = router
    one, two = backends
    _record(record, [(1, 50.0, "primary", one.server_port), (2, 50.0, "canary", two.server_port)],
            sticky_header="X-User")
    _wait_routes(admin, 2)
    with httpx.Client() as client:
        for user in ("alice", "bob", "carol", "dave"):
            seen = {client.post(f"{url}/p", json={}, headers={"X-User": user}).json()["version"]
                    for _ in range(10)}  # fmt: skip
            assert len(seen) == 1


def test_shadow_is_captured_never_returned(router, backends, tmp_path: Path) -> None:
    record, url, admin, _ = router
    one, two = backends
    _record(record, [(1, 100.0, "primary", one.server_port), (2, 0.0, "shadow", two.server_port)])
    _wait_routes(admin, 2)
    answers = {httpx.post(f"{url}/predict", json={"i": i}).json()["version"] for i in range(10)}
    assert answers == {"one"}
    capture = tmp_path / "shadow-v2.jsonl"
    deadline = time.monotonic() + 5
    while not capture.exists() or len(capture.read_text().splitlines()) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lines = [json.loads(line) for line in capture.read_text().splitlines()]
    assert {line["response"]["version"] for line in lines} == {"two"}
    assert sorted(line["request"]["i"] for line in lines) == list(range(10))


def test_an_unreachable_version_is_a_counted_502(router) -> None:
    record, url, admin, _ = router
    _record(record, [(1, 100.0, "primary", proc.free_port("127.0.0.1"))])
    _wait_routes(admin, 1)
    answer = httpx.post(f"{url}/predict", json={})
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "version_unreachable"
    assert httpx.get(f"{admin}/metrics").json()["versions"]["1"]["errors"] == {"502": 1}


def test_no_live_version_is_503(router) -> None:
    _, url, _, _ = router
    assert httpx.post(f"{url}/predict", json={}).status_code == 503


def test_the_router_stops_once_its_deployer_is_gone_and_the_record_does_not_name_it(
    router,
) -> None:
    record, _, _, pid = router
    _record(record, [], pid=1, pids=[1])  # a record naming other processes only
    proc.release(pid)  # as when the deployer exits or is killed
    deadline = time.monotonic() + 10
    while proc.is_alive(pid):
        assert time.monotonic() < deadline, "the router outlived its record"
        time.sleep(0.1)


def test_choose_by_weight_and_key() -> None:
    import random

    routes = [Route(1, 90.0, "primary", 1), Route(2, 10.0, "canary", 2),
              Route(3, 0.0, "shadow", 3)]  # fmt: skip
    rng = random.Random(7)
    seen = Counter(choose(routes, None, rng).version for _ in range(10_000))  # type: ignore[union-attr]
    assert 3 not in seen and 850 <= seen[2] <= 1150
    assert len({choose(routes, "alice", rng).version for _ in range(50)}) == 1  # type: ignore[union-attr]
    assert choose([Route(3, 0.0, "shadow", 3)], None, rng) is None
