"""``python -m slml.runtime.serve`` as a real process on loopback, and the runtime's imports."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = [[5.1, 3.5, 1.4, 0.2]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(model: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[dict]:
    """Start the server, wait for its ready line; SIGTERM (then kill) it on the way out.
    Yields the ready line's fields plus ``proc``."""
    cmd = [sys.executable, "-m", "slml.runtime.serve", "--model", str(model), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})  # fmt: skip
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"server exited ({proc.wait(10)}): {proc.stderr.read()}")
        yield {**json.loads(line), "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_serve_predicts_logs_and_stops_cleanly_on_sigterm(iris_artifact):
    with serving(iris_artifact, "--port", "0", "--admin-port", "0") as ready:
        proc = ready["proc"]
        assert ready["event"] == "ready" and ready["pid"] == proc.pid
        assert ready["port"] != ready["admin_port"]
        base = f"http://127.0.0.1:{ready['port']}"
        r = httpx.post(f"{base}/predict", json={"instances": ROW},
                       headers={"x-request-id": "serve-test-1"})  # fmt: skip
        assert r.status_code == 200
        assert r.json() == {"predictions": [0], "model": "iris", "version": "1"}
        admin = httpx.get(f"http://127.0.0.1:{ready['admin_port']}/healthz")
        assert admin.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        stderr = proc.stderr.read()
    lines = [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]
    predict = [x for x in lines if x.get("request_id") == "serve-test-1"]
    assert len(predict) == 1
    assert predict[0] | {"latency_ms": 0, "ts": 0} == {
        "ts": 0, "level": "info", "severity": "INFO", "event": "request",
        "request_id": "serve-test-1",
        "method": "POST", "path": "/predict", "status": 200, "latency_ms": 0, "batch_size": 1,
    }  # fmt: skip


def test_two_servers_share_a_port_with_reuse_port(iris_artifact, tmp_path):
    port = _free_port()
    with serving(iris_artifact, "--port", str(port), "--reuse-port", "--admin-port", "0") as a:
        with serving(iris_artifact, "--port", str(port), "--reuse-port", "--admin-port", "0") as b:
            assert a["port"] == b["port"] == port
            assert a["pid"] != b["pid"]
            for ready in (a, b):  # each process is reachable through its own admin port
                r = httpx.post(f"http://127.0.0.1:{ready['admin_port']}/predict",
                               json={"instances": ROW})  # fmt: skip
                assert r.json()["predictions"] == [0]
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            b["proc"].send_signal(signal.SIGTERM)
            assert b["proc"].wait(15) == 0
        # the first server still serves the shared port once the second has gone
        assert httpx.post(f"http://127.0.0.1:{port}/predict", json={"instances": ROW}).is_success


def test_port_in_use_without_reuse_port_fails(iris_artifact):
    with serving(iris_artifact, "--port", "0") as ready:
        proc = subprocess.run(
            [sys.executable, "-m", "slml.runtime.serve", "--model", str(iris_artifact),
             "--port", str(ready["port"])],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    assert "cannot listen" in proc.stderr


def test_tampered_artifact_exits_3_with_one_line(iris_artifact):
    (iris_artifact / "model" / "model.joblib").write_bytes(b"not the model that was saved")
    proc = subprocess.run(
        [sys.executable, "-m", "slml.runtime.serve", "serve", "--model", str(iris_artifact)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SLML_DEBUG": "0"},
    )  # fmt: skip
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "integrity check" in proc.stderr and "model/model.joblib" in proc.stderr


def test_model_dir_and_port_from_environment(iris_artifact):
    port = _free_port()
    env = {"SLML_MODEL_DIR": str(iris_artifact), "PORT": str(port)}
    cmd = [sys.executable, "-m", "slml.runtime.serve"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, **env})  # fmt: skip
    try:
        ready = json.loads(proc.stdout.readline())
        assert (ready["port"], ready["host"]) == (port, "127.0.0.1")
        assert httpx.get(f"http://127.0.0.1:{port}/ping").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        proc.stdout.close()


FORBIDDEN = re.compile(
    r"^(boto3|botocore|pulumi\w*|google|azure|typer|rich|pydantic|yaml|jinja2|click|"
    r"numpy|sklearn|onnxruntime|pandas)(\.|$)"
)


@pytest.mark.parametrize("module", ["slml.runtime.app", "slml.runtime.serve"])
def test_runtime_imports_stay_lean(module):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    names = [line.split("|")[-1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]  # fmt: skip
    assert module in names
    outside = [n for n in names if n.startswith("slml") and not n.startswith("slml.runtime")]
    assert outside == ["slml"] or outside == [], outside  # only the lazy package __init__
    assert [n for n in names if FORBIDDEN.match(n)] == []


def _imported(code: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}  # fmt: skip


def test_http_layer_imports_only_what_uvicorn_serving_imports():
    """slml.runtime.protocol runs in the server process only, where uvicorn's h11
    protocol is imported anyway: it may add nothing but its slml.runtime siblings."""
    base = _imported("import uvicorn.protocols.http.h11_impl, slml.runtime.app")
    added = _imported("import slml.runtime.protocol, slml.runtime.app") - base
    assert {n for n in added if not n.startswith("slml.runtime.")} == set(), added


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_workers_share_the_port_and_all_stop_on_sigterm(iris_artifact):
    with serving(iris_artifact, "--port", "0", env={"SLML_WORKERS": "3"}) as ready:
        proc = ready["proc"]
        workers = _children(proc.pid)
        assert len(workers) == 2, workers  # the first process serves too
        base = f"http://127.0.0.1:{ready['port']}"
        for i in range(12):  # new connections each: the kernel spreads them
            r = httpx.post(f"{base}/predict", json={"instances": ROW},
                           headers={"x-request-id": f"w-{i}"})  # fmt: skip
            assert r.status_code == 200 and r.json()["predictions"] == [0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        stderr = proc.stderr.read()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    logged = {json.loads(x)["request_id"] for x in stderr.splitlines() if x.startswith("{")
              and '"event":"request"' in x}  # fmt: skip
    assert {f"w-{i}" for i in range(12)} <= logged


@pytest.mark.parametrize("value", ["0", "many", "65"])
def test_a_bad_worker_count_is_refused_with_exit_2(iris_artifact, value):
    cmd = [sys.executable, "-m", "slml.runtime.serve", "--model", str(iris_artifact),
           "--workers", value]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "expected a whole number from 1 to 64" in done.stderr


def test_an_event_line_is_one_write_newline_included() -> None:
    import io

    from slml.runtime.logs import emit

    class Writes(io.StringIO):
        calls: list[str] = []

        def write(self, text: str) -> int:
            self.calls.append(text)
            return super().write(text)

    out = Writes()
    emit({"event": "promoted", "pid": 3, "port": 80}, out)
    assert out.calls == ['{"event": "promoted", "pid": 3, "port": 80}\n']
