from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slml.providers import local_process as proc


def test_free_port_is_bindable() -> None:
    import socket

    port = proc.free_port("127.0.0.1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert proc.connect_host("0.0.0.0") == "127.0.0.1"
    assert proc.connect_host("localhost") == "localhost"


def test_server_env_does_not_leak_slmls_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("VIRTUAL_ENV", "/work/main/.venv")
    env = proc.server_env(Path("/b"), {"MY_FLAG": "1"})
    assert env["PYTHONPATH"] == "/b/app" and "VIRTUAL_ENV" not in env
    assert env["MY_FLAG"] == "1" and env["PYTHONUNBUFFERED"] == "1"


def test_server_command_uses_the_bundles_env() -> None:
    command = proc.server_command(Path("/env"), Path("/b"), host="127.0.0.1", port=8731)
    assert command[:3] == ["/env/bin/python", "-m", "slml.runtime.serve"]
    assert command[command.index("--model") + 1] == "/b/model"
    assert "--reuse-port" in command and command[-2:] == ["--admin-port", "0"]


def test_only_our_servers_are_ever_signalled() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert proc.is_alive(other.pid)
        assert not proc.is_our_server(other.pid)  # a live process, but not slml's server
        assert proc.stop_server(other.pid) is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
    assert not proc.is_alive(other.pid)
    assert not proc.is_our_server(None)


def test_a_spawned_process_that_exits_fails_the_wait(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    pid = proc.spawn(
        [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
        cwd=tmp_path,
        env=os.environ,
        log_path=log,
    )
    with pytest.raises(proc.ServerFailed, match=r"exited during start-up \(exit code 3\)"):
        proc.wait_healthy(pid, log_path=log, offset=0, host="127.0.0.1", timeout=30)
    assert proc.tail(log, 5) == ["boom"]


def test_a_server_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    pid = proc.spawn(
        [sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path, env=os.environ,
        log_path=log,
    )  # fmt: skip
    try:
        with pytest.raises(proc.ServerFailed, match=r"never reported ready within 0\.3 s"):
            proc.wait_healthy(pid, log_path=log, offset=0, host="127.0.0.1", timeout=0.3)
    finally:
        os.killpg(pid, 9)


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert proc.tail(log, 2) == ["line 998", "line 999"]
    assert proc.tail(log, 0) == []
    assert proc.tail(tmp_path / "missing.log", 5) == []
