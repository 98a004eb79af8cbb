"""How the local provider controls a server it starts (stdlib only).

A server started with ``--standby --control-fd N --record PATH``:

- listens at first on its admin port only, so it can be health-checked while it is
  not yet part of the shared port;
- reads one-byte commands from the pipe ``N``, whose other end the deploying process
  holds: ``p`` (promote) binds the shared port (SO_REUSEPORT) and starts serving it,
  then prints ``{"event": "promoted", "pid", "port"}`` (or ``promote-failed`` with the
  error) on stdout;
- once the pipe reaches end of file (the deployer finished, failed, or was killed, even
  by SIGKILL: the kernel closes its end), keeps running only while the deployment record
  ``PATH`` names its pid. It checks twice a second and exits gracefully when the record
  names another pid or is gone. A record it cannot read or understand keeps it running
  (``slml destroy --force`` finds it by its marker then).

So a deploy killed at any point leaves no server outside the record: a new server the
record does not name stops by itself, and so does an old one the record no longer names.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from slml.runtime.logs import emit

PROMOTE = b"p"
POLL_S = 0.5

Promote = Callable[[], int]  # binds the shared port and serves it; returns the port


def named_in_record(path: Path, pid: int) -> bool:
    """False when the record is absent or names another pid; True when it names ``pid``
    (as ``pid`` or in ``pids``) or cannot be read or understood (the safe side: never
    stop on a doubt)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    recorded = record.get("pid") if isinstance(record, dict) else None
    kept = record.get("pids") if isinstance(record, dict) else None
    if isinstance(kept, list) and pid in kept:  # several versions live (a rollout)
        return True
    if not isinstance(recorded, int) or isinstance(recorded, bool):
        return True
    return recorded == pid


class Control:
    """The control thread of one server. ``promote`` runs on this thread when the
    deployer asks; ``stop`` when the server must exit. Daemon thread: never blocks exit."""

    def __init__(
        self,
        *,
        fd: int | None,
        record: Path | None,
        promote: Promote,
        stop: Callable[[str], None],
        poll: float = POLL_S,
    ) -> None:
        self._fd = fd
        self._record = record
        self._promote = promote
        self._stop = stop
        self._poll = poll
        self._pid = os.getpid()

    def start(self) -> None:
        if self._fd is None and self._record is None:
            return
        threading.Thread(target=self._run, name="slml-control", daemon=True).start()

    def _run(self) -> None:
        if self._fd is not None:
            self._commands(self._fd)
        if self._record is not None:
            self._watch(self._record)

    def _commands(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 64)
            except OSError:
                data = b""
            if not data:  # the deployer is gone
                os.close(fd)
                return
            if PROMOTE in data:
                self._do_promote()

    def _do_promote(self) -> None:
        try:
            port = self._promote()
        except Exception as exc:  # reported to the deployer, which stops this server
            _emit({"event": "promote-failed", "pid": self._pid, "error": str(exc)})
            return
        _emit({"event": "promoted", "pid": self._pid, "port": port})

    def _watch(self, record: Path) -> None:
        while named_in_record(record, self._pid):
            time.sleep(self._poll)
        self._stop(f"the deployment record {record} does not name this server (pid {self._pid})")


def _emit(event: dict[str, object]) -> None:
    emit(event)
