"""Processes of the local provider: start a bundle's server, wait until it is healthy,
promote it onto the shared port, tell whether a recorded pid is still our server, find
every server of a stage, stop it, read its log.

Servers run in their own session (``start_new_session``), so they outlive the CLI and
a Ctrl-C in the terminal never reaches them; they are stopped through their process
group. Only processes whose command line runs ``slml.runtime.serve`` are ever signalled.

Each server carries a marker in its environment (``SLML_LOCAL_DEPLOYMENT``: a hash of
the project directory and the stage), so ``find_servers`` finds every server of a stage
through /proc, whatever the records say. A server starts in standby (admin port only)
with a control pipe to this process; ``promote`` puts it on the shared port. See
``slml.runtime.control`` for what the server does when this process goes away.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from slml.providers.local_logs import follow, tail

__all__ = ["follow", "tail"]  # the log readers, here for the provider's convenience

SERVE_MODULE = "slml.runtime.serve"
ROUTER_MODULE = "slml.providers.local_router"  # the traffic router of a rollout
OUR_MODULES = (SERVE_MODULE, ROUTER_MODULE)
MARKER_VAR = "SLML_LOCAL_DEPLOYMENT"
_SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "SLML_MODEL_DIR")
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}  # our own children, reaped through Popen
_CONTROL: dict[int, int] = {}  # pid -> our end of its control pipe
_LOGGERS: dict[int, subprocess.Popen[bytes]] = {}  # pid -> the process writing its rotating log
LOG_MODULE = "slml.runtime.logfile"
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
        port: int = sock.getsockname()[1]
        return port


def stage_marker(project_dir: Path, stage: str) -> str:
    """The marker every server of this project's stage carries in its environment."""
    digest = hashlib.sha256(str(Path(project_dir)).encode()).hexdigest()[:16]
    return f"{digest}/{stage}"


def server_command(
    env_dir: Path, bundle_dir: Path, *, host: str, port: int, record: Path | None = None
) -> list[str]:
    """The server's command line; with ``record`` it starts in standby, tied to it."""
    python = Path(env_dir) / "bin" / "python"
    model = Path(bundle_dir) / "model"
    command = [str(python), "-m", SERVE_MODULE, "--model", str(model), "--host", host,
               "--port", str(port), "--reuse-port"]  # fmt: skip
    if record is not None:
        command += ["--standby", "--record", str(record)]
    return [*command, "--admin-port", "0"]


def router_command(*, record: Path, host: str, port: int, capture_dir: Path) -> list[str]:
    """The local router's command line (run by slml's own Python)."""
    return [sys.executable, "-m", ROUTER_MODULE, "--record", str(record), "--host", host,
            "--port", str(port), "--capture-dir", str(capture_dir)]


def bundle_supports(bundle_dir: Path, module: str) -> bool:
    """Whether the bundle's runtime has ``slml/runtime/<module>.py`` (a bundle built by
    an older slml lacks the newer ones: ``control`` for standby, ``logfile``)."""
    return (Path(bundle_dir) / "app" / "slml" / "runtime" / f"{module}.py").is_file()


def server_env(bundle_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """This environment minus anything that would leak slml's own Python into the
    bundle's, plus the bundle's code path and the user's ``local.env``."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update({"PYTHONPATH": str(Path(bundle_dir) / "app"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def spawn(
    command: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    marker: str | None = None,
    control: bool = False,
    rotate: tuple[int, int] | None = None,
) -> int:
    """Start ``command`` detached (own session), stdout+stderr appended to ``log_path``,
    carrying ``marker``; with ``control``, a control pipe (``--control-fd``) whose end
    this process keeps until ``release``; with ``rotate=(max_bytes, keep)``, through
    ``slml.runtime.logfile`` (run by ``command``'s Python), which rotates the log.
    Returns the pid (also its process group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**env, **({MARKER_VAR: marker} if marker else {})}
    read_end, write_end = os.pipe() if control else (None, None)
    fds = (read_end,) if read_end is not None else ()
    if read_end is not None:
        command = [*command, "--control-fd", str(read_end)]
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if rotate else log, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=fds,
            )  # fmt: skip
            if rotate:
                _start_logger(proc, command[0], log_path, rotate, cwd=cwd, env=env, log=log)
    except BaseException:
        for fd in (read_end, write_end):
            if fd is not None:
                os.close(fd)
        raise
    if read_end is not None and write_end is not None:
        os.close(read_end)
        _CONTROL[proc.pid] = write_end
    _SPAWNED[proc.pid] = proc
    return proc.pid


def _start_logger(
    server: subprocess.Popen[bytes], python: str, log_path: Path, rotate: tuple[int, int], *,
    cwd: Path, env: Mapping[str, str], log: Any,
) -> None:  # fmt: skip
    """The log writer reads the server's output pipe; it ends when the server does."""
    max_bytes, keep = rotate
    try:
        logger = subprocess.Popen(
            [python, "-m", LOG_MODULE, str(log_path), "--max-bytes", str(max_bytes),
             "--keep", str(keep)],
            cwd=cwd, env=dict(env), stdin=server.stdout, stdout=subprocess.DEVNULL,
            stderr=log, start_new_session=True,
        )  # fmt: skip
    except BaseException:
        server.kill()
        raise
    finally:
        if server.stdout is not None:
            server.stdout.close()
    _LOGGERS[server.pid] = logger


def _reap_logger(pid: int, timeout: float = 5.0) -> None:
    """Once server ``pid`` is gone, wait for its log writer to write the rest."""
    logger = _LOGGERS.pop(pid, None)
    if logger is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            logger.wait(timeout=timeout)


def promote(pid: int, *, log_path: Path, offset: int, timeout: float = 30.0) -> int:
    """Ask the standby server ``pid`` to serve the shared port; block until it says it
    does. Returns the port. Raises ServerFailed when it cannot (port taken, exited)."""
    fd = _CONTROL.get(pid)
    if fd is None:
        raise ServerFailed(f"no control pipe to server {pid}")
    try:
        os.write(fd, b"p")
    except OSError as exc:
        raise ServerFailed(f"the server exited before it could be promoted ({exc})") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = _event_line(log_path, offset, pid, ("promoted", "promote-failed"))
        if event and event["event"] == "promoted":
            return int(event["port"])
        if event:
            raise ServerFailed(f"it cannot listen on the shared port: {event.get('error')}")
        if not is_alive(pid):
            raise ServerFailed(f"the server exited while being promoted{_exit_code(pid)}")
        time.sleep(0.02)
    raise ServerFailed(f"the server did not take the shared port within {timeout:g} s")


def release(pid: int) -> None:
    """Close our end of ``pid``'s control pipe: from now on the server runs only while
    the deployment record names it. Idempotent."""
    fd = _CONTROL.pop(pid, None)
    if fd is not None:
        os.close(fd)


def find_servers(marker: str) -> list[int]:
    """Pids of every live server carrying ``marker`` (read from /proc; processes of
    other users are unreadable and skipped). Ascending."""
    entry = f"{MARKER_VAR}={marker}".encode()
    found = []
    for path in Path("/proc").iterdir():
        if not path.name.isdigit() or int(path.name) == os.getpid():
            continue
        try:
            environ = (path / "environ").read_bytes()
        except OSError:
            continue
        if entry in environ.split(b"\0") and is_our_server(int(path.name)):
            found.append(int(path.name))
    return sorted(found)


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
        ready = ready or _event_line(log_path, offset, pid, ("ready",))
        if ready and _healthy(f"http://{connect_host(host)}:{ready['admin_port']}/healthz"):
            return Started(pid, os.getpgid(pid), int(ready["port"]), int(ready["admin_port"]))
        time.sleep(0.05)
    stage = "answered no health check" if ready else "never reported ready"
    raise ServerFailed(f"the server {stage} within {timeout:g} s")


def _exit_code(pid: int) -> str:
    proc = _SPAWNED.get(pid)
    return f" (exit code {proc.returncode})" if proc and proc.returncode is not None else ""


def _event_line(
    log_path: Path, offset: int, pid: int, kinds: tuple[str, ...]
) -> dict[str, Any] | None:
    """The first JSON line of ``pid`` whose event is one of ``kinds``, after ``offset``
    (from the start when the log was rotated since)."""
    with open(log_path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(offset if fh.tell() >= offset else 0)
        for raw in fh:
            for event in _events_in(raw.decode(errors="replace")):
                if event.get("pid") == pid and event.get("event") in kinds:
                    return event
    return None


_DECODER = json.JSONDecoder()
_EVENT_START = '{"event"'


def _events_in(line: str) -> Iterator[dict[str, Any]]:
    """The runtime's event objects in one log line. Usually the whole line is one; but
    a model's own unterminated ``print`` or another writer can share the line, so every
    ``{"event"`` in it is tried."""
    start = line.find(_EVENT_START)
    while start != -1:
        try:
            event, end = _DECODER.raw_decode(line, start)
        except ValueError:
            end = start + 1
        else:
            if isinstance(event, dict):
                yield event
        start = line.find(_EVENT_START, end)


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
    """True when ``pid`` is alive and runs ``slml.runtime.serve`` or the local router (not
    a recycled pid)."""
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
            return any(module.encode() in cmdline for module in OUR_MODULES)
        time.sleep(0.01)
    return False


def stop_server(pid: int, pgid: int | None = None, *, grace: float = 10.0) -> bool:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` s. Returns False
    when there was nothing of ours to stop. Blocking; idempotent."""
    release(pid)
    if not is_our_server(pid):
        _SPAWNED.pop(pid, None)
        _reap_logger(pid)
        return False
    group = pgid or pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
        if _wait_dead(pid, wait):
            break
    _SPAWNED.pop(pid, None)
    _reap_logger(pid)
    return True


def _wait_dead(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return not is_alive(pid)
