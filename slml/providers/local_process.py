"""Processes of the local provider: start a bundle's server, wait until it is healthy,
tell whether a recorded pid is still our server, stop it, read its log.

Servers run in their own session (``start_new_session``), so they outlive the CLI and
a Ctrl-C in the terminal never reaches them; they are stopped through their process
group. Only processes whose command line runs ``slml.runtime.serve`` are ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SERVE_MODULE = "slml.runtime.serve"
_SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "SLML_MODEL_DIR")
_SPAWNED: dict[int, subprocess.Popen] = {}  # our own children, reaped through Popen
Clock = Callable[[], float]


class ServerFailed(Exception):
    """The new server exited or never became healthy; ``str()`` says which."""


@dataclass(frozen=True)
class Started:
    """A server that passed its health check."""

    pid: int
    pgid: int
    port: int
    admin_port: int


def connect_host(host: str) -> str:
    """The address to connect to for a server bound on ``host``."""
    return "127.0.0.1" if host == "0.0.0.0" else host


def free_port(host: str) -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((connect_host(host), 0))
        return sock.getsockname()[1]


def server_command(env_dir: Path, bundle_dir: Path, *, host: str, port: int) -> list[str]:
    python = Path(env_dir) / "bin" / "python"
    model = Path(bundle_dir) / "model"
    return [str(python), "-m", SERVE_MODULE, "--model", str(model), "--host", host,
            "--port", str(port), "--reuse-port", "--admin-port", "0"]  # fmt: skip


def server_env(bundle_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """This environment minus anything that would leak slml's own Python into the
    bundle's, plus the bundle's code path and the user's ``local.env``."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update({"PYTHONPATH": str(Path(bundle_dir) / "app"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def spawn(command: list[str], *, cwd: Path, env: Mapping[str, str], log_path: Path) -> int:
    """Start ``command`` detached (own session), stdout+stderr appended to ``log_path``.
    Returns the pid (which is also its process group id)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _SPAWNED[proc.pid] = proc
    return proc.pid


def wait_healthy(
    pid: int,
    *,
    log_path: Path,
    offset: int,
    host: str,
    timeout: float,
    clock: Clock = time.monotonic,
) -> Started:
    """Block until the server ``pid`` printed its ready line and its admin port answers
    ``GET /healthz`` with 200. Raises ServerFailed when it exits or ``timeout`` passes."""
    deadline = clock() + timeout
    ready: dict[str, Any] | None = None
    while clock() < deadline:
        if not is_alive(pid):
            raise ServerFailed(f"the server exited during start-up{_exit_code(pid)}")
        ready = ready or _ready_line(log_path, offset, pid)
        if ready and _healthy(f"http://{connect_host(host)}:{ready['admin_port']}/healthz"):
            return Started(pid, os.getpgid(pid), int(ready["port"]), int(ready["admin_port"]))
        time.sleep(0.05)
    stage = "answered no health check" if ready else "never reported ready"
    raise ServerFailed(f"the server {stage} within {timeout:g} s")


def _exit_code(pid: int) -> str:
    proc = _SPAWNED.get(pid)
    return f" (exit code {proc.returncode})" if proc and proc.returncode is not None else ""


def _ready_line(log_path: Path, offset: int, pid: int) -> dict[str, Any] | None:
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        for raw in fh:
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                ours = isinstance(event, dict) and event.get("pid") == pid
                if ours and event.get("event") == "ready":
                    return event
    return None


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    proc = _SPAWNED.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def is_our_server(pid: int | None) -> bool:
    """True when ``pid`` is alive and runs ``slml.runtime.serve`` (not a recycled pid)."""
    if not pid or not is_alive(pid):
        return False
    if pid in _SPAWNED:  # started by this very process
        return True
    for _attempt in range(3):  # cmdline reads empty while the process is mid-exec
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        if cmdline:
            return SERVE_MODULE.encode() in cmdline
        time.sleep(0.01)
    return False


def stop_server(pid: int, pgid: int | None = None, *, grace: float = 10.0) -> bool:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` s. Returns False
    when there was nothing of ours to stop. Blocking; idempotent."""
    if not is_our_server(pid):
        _SPAWNED.pop(pid, None)
        return False
    group = pgid or pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
        if _wait_dead(pid, wait):
            break
    _SPAWNED.pop(pid, None)
    return True


def _wait_dead(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return not is_alive(pid)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (empty when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max(lines, 1) * 400))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []


def follow(path: Path, lines: int, *, poll: float = 0.2) -> Iterator[str]:
    """The last ``lines`` lines, then every new line as it is written; never ends."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)  # before the tail is read, so no line falls in between
        yield from tail(path, lines)
        pending = b""
        while True:
            chunk = fh.readline()
            if not chunk:
                time.sleep(poll)
                continue
            pending += chunk
            if pending.endswith(b"\n"):
                yield pending.decode("utf-8", errors="replace").rstrip("\n")
                pending = b""
