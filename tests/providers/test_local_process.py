from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.procs import processes_with
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


# -- rotating logs (D19) ---------------------------------------------------------------


def _writer(script: str, log: Path, *, max_bytes: int, keep: int) -> int:
    return proc.spawn([sys.executable, "-c", script], cwd=log.parent, env=os.environ,
                      log_path=log, rotate=(max_bytes, keep))  # fmt: skip


def test_a_servers_log_rotates_and_keeps_every_recent_line(tmp_path: Path) -> None:
    log = tmp_path / "server-v1.log"
    script = "import sys\nfor i in range(3000): print(f'line {i:05d} ' + 'x' * 40)\n"
    pid = _writer(script, log, max_bytes=8192, keep=2)
    deadline = time.monotonic() + 30
    while proc.is_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.stop_server(pid, pid)  # nothing left to stop; waits for the log writer
    while proc.tail(log, 1) != [f"line 02999 {'x' * 40}"]:
        assert time.monotonic() < deadline, proc.tail(log, 3)
        time.sleep(0.05)
    parts = sorted(p.name for p in tmp_path.iterdir())
    assert parts == ["server-v1.log", "server-v1.log.1", "server-v1.log.2"]
    assert all((tmp_path / p).stat().st_size <= 8192 for p in parts)
    kept = "".join((tmp_path / p).read_text() for p in reversed(parts)).splitlines()
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 3000))  # whole lines, none lost, in order
    last = proc.tail(log, 150)  # more than the current part holds: the one before too
    assert len(last) == 150 and [int(x.split()[1]) for x in last] == list(range(2850, 3000))


def test_a_killed_writer_loses_no_written_line(tmp_path: Path) -> None:
    log = tmp_path / "server-v1.log"
    script = "import time\nprint('before the kill', flush=True)\ntime.sleep(60)\n"
    pid = _writer(script, log, max_bytes=4096, keep=1)
    deadline = time.monotonic() + 30
    while proc.tail(log, 1) != ["before the kill"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)
    proc.stop_server(pid, pid, grace=1)
    assert not list(processes_with(str(log)))  # the log writer ended with the server


def test_follow_keeps_reading_across_a_rotation(tmp_path: Path) -> None:
    from slml.runtime.logfile import RotatingFile

    log = tmp_path / "server-v1.log"
    sink = RotatingFile(log, max_bytes=1024, keep=2)
    sink.write_line(b"first\n")
    stream = proc.follow(log, 1, poll=0.01)
    assert next(stream) == "first"
    for i in range(40):  # 40 * 50 bytes: rotates at least once
        sink.write_line(f"after {i:02d} ".encode() + b"y" * 40 + b"\n")
    seen = [next(stream) for _ in range(40)]
    assert [line.split()[1] for line in seen] == [f"{i:02d}" for i in range(40)]
    assert log.with_name("server-v1.log.1").exists()
    sink.close()


# -- standby, promote, tied to the record (D27) ----------------------------------------


def test_a_server_reads_its_record_on_the_safe_side(tmp_path: Path) -> None:
    from slml.runtime.control import named_in_record

    record = tmp_path / "local.json"
    assert named_in_record(record, 42) is False  # absent: nobody keeps it
    for text, named in [('{"pid": 42}', True), ('{"pid": 43}', False), ('{"pid": "42"}', True),
                        ("[42]", True), ('{"pid', True)]:  # fmt: skip
        record.write_text(text)
        assert named_in_record(record, 42) is named, text


def test_standby_joins_the_port_only_when_promoted_and_leaves_the_record(
    tmp_path: Path, iris_artifact: Path
) -> None:
    port, record, log = proc.free_port("127.0.0.1"), tmp_path / "local.json", tmp_path / "s.log"
    command = [sys.executable, "-m", proc.SERVE_MODULE, "--model", str(iris_artifact),
               "--port", str(port), "--reuse-port", "--standby", "--record", str(record),
               "--admin-port", "0"]  # fmt: skip
    pid = proc.spawn(command, cwd=tmp_path, env=os.environ, log_path=log, control=True,
                     marker="test/standby")  # fmt: skip
    try:
        started = proc.wait_healthy(pid, log_path=log, offset=0, host="127.0.0.1", timeout=60)
        assert _answers(started.admin_port) and not _answers(port)  # not on the port yet
        assert proc.promote(pid, log_path=log, offset=0) == port and _answers(port)
        assert proc.find_servers("test/standby") == [pid]
        record.write_text(json.dumps({"pid": pid}))
        proc.release(pid)  # on its own now: it stays while the record names it
        time.sleep(1.5)
        assert proc.is_alive(pid)
        record.write_text(json.dumps({"pid": pid + 1}))
        deadline = time.monotonic() + 30
        while proc.is_alive(pid):
            assert time.monotonic() < deadline, proc.tail(log, 5)
            time.sleep(0.05)
        assert any('"event": "exiting"' in line for line in proc.tail(log, 20))
    finally:
        proc.stop_server(pid, pid, grace=2)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_an_event_sharing_its_line_with_another_writer_is_still_found(tmp_path: Path) -> None:
    # As seen in CI: the promoted line, then a request log line from the log writer thread
    # before its newline; and a model's print without a newline before a ready line.
    log = tmp_path / "server.log"
    log.write_text(
        "--- slml: starting version 2 ---\n"
        '{"event": "promoted", "pid": 7, "port": 6043}{"ts": 1.5, "event": "request", '
        '"status": 200}\n\n'
        'loading weights...{"event": "ready", "pid": 8, "port": 1, "admin_port": 2}\n'
        '{"event": "promoted", "pid": 9, "port": 5}\n'
        '{"event": "promoted", "pid": 10, truncated\n', encoding="utf-8")  # fmt: skip
    assert proc._event_line(log, 0, 7, ("promoted",)) == {
        "event": "promoted", "pid": 7, "port": 6043}
    assert proc._event_line(log, 0, 8, ("ready",))["admin_port"] == 2
    assert proc._event_line(log, 0, 9, ("promoted",))["port"] == 5
    assert proc._event_line(log, 0, 10, ("promoted",)) is None
    assert proc._event_line(log, 0, 7, ("ready",)) is None
