"""Process helpers shared by the benchmarks and tests/reliability: start a server in its
own process group, wait for it to answer, read its memory from /proc, stop it for sure.

Everything here binds or connects to loopback only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PYTHON = Path(sys.executable)
SLML = PYTHON.with_name("slml")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str, *, timeout: float = 2.0) -> int | None:
    """The status of a GET to ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def post_json(url: str, body: bytes, *, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """(status, body) of a JSON POST; (None, b"") when nothing answers."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (OSError, ValueError):
        return None, b""


@dataclass
class Server:
    """A server process started by ``start_server``; ``log`` holds its stdout+stderr."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_group(self.proc)


def start_server(
    cmd: Sequence[str],
    *,
    url: str,
    health: str = "/healthz",
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
) -> Server:
    """Start ``cmd`` in a new process group and wait until GET ``url+health`` is 200.
    Raises RuntimeError (with the log's tail) when it exits or does not answer in time;
    the process is stopped then."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    server = Server(proc=proc, url=url, log=log)
    try:
        wait_healthy(server, health=health, timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_healthy(server: Server, *, health: str, timeout: float) -> float:
    """Seconds until the server's health URL answered 200."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited {server.proc.returncode}:\n{tail(server.log)}")
        if http_status(server.url + health, timeout=1.0) == 200:
            return time.perf_counter() - start
        time.sleep(0.02)
    raise RuntimeError(f"server not healthy after {timeout} s:\n{tail(server.log)}")


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def stop_group(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds. Idempotent."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group


def proc_status(pid: int) -> dict[str, str]:
    """The fields of /proc/<pid>/status ({} when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in text.splitlines())
    )


def memory_kb(pid: int, field: str = "VmRSS") -> int | None:
    """VmRSS (current) or VmHWM (peak) of ``pid`` in kB, None when it is gone."""
    value = proc_status(pid).get(field)
    return int(value.split()[0]) if value else None


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    state = proc_status(pid).get("State", "")
    return bool(state) and not state.startswith("Z")


def processes_with(needle: str) -> Iterator[int]:
    """Pids whose command line contains ``needle`` (e.g. a temp project path)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and int(entry.name) != os.getpid() and alive(int(entry.name)):
            yield int(entry.name)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (a server started with its own session,
    as the local provider does); nothing when it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
