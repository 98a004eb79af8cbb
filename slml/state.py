"""The project's ``.slml/`` directory: deployment records, history, builds, Pulumi state.

Layout::

    .slml/
      lock                          file lock held by every command that writes here
      deployments/<stage>/<provider>.json   the current record (absent: not deployed)
      history.jsonl                 every deploy and destroy, append-only
      builds/<provider>/            bundles built for each provider
      local/<stage>/                local servers' logs
      pulumi/                       Pulumi's file backend (default)

Records are written atomically (temp file + rename), so a crash or Ctrl-C mid-write
never leaves half a record; the lock serialises concurrent ``slml`` commands.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from slml.errors import DeployError

STATE_DIR = ".slml"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def who() -> str:
    """``user@host`` of whoever runs this."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename; never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_or_create_secret(path: Path) -> str:
    """The secret stored in ``path``; on first use a new random one, written 0600.
    Never overwrites an existing file (O_EXCL), so two processes agree on one value."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its value
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


class ProjectState:
    """Reads and writes ``.slml/`` under ``root``. Safe across processes with ``lock()``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.dir = self.root / STATE_DIR

    # -- locking ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, *, timeout: float = 600.0, waiting: str | None = None) -> Iterator[None]:
        """Hold the project lock. Blocks up to ``timeout`` s, then raises DeployError."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.dir / "lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if waiting:
                print(waiting, flush=True)
            try:
                lock.acquire(timeout=timeout)
            except Timeout:
                raise DeployError(
                    f"another slml command has held {self.dir / 'lock'} for {timeout:.0f} s",
                    hint="wait for it to finish; if none is running, delete the lock file",
                ) from None
        try:
            yield
        finally:
            lock.release()

    # -- paths -----------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def build_dir(self, provider: str) -> Path:
        return self.path("builds", provider)

    def stage_dir(self, provider: str, stage: str) -> Path:
        return self.path(provider, stage)

    def record_path(self, stage: str, provider: str) -> Path:
        return self.path("deployments", stage, f"{provider}.json")

    # -- records ---------------------------------------------------------------------
    def read_record(self, stage: str, provider: str) -> dict[str, Any] | None:
        """The current deployment record, or None when not deployed."""
        path = self.record_path(stage, provider)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DeployError(
                f"the deployment record {path} is unreadable: {exc}",
                hint="restore it from .slml/history.jsonl or run `slml destroy`",
            ) from None

    def write_record(self, stage: str, provider: str, record: dict[str, Any]) -> None:
        write_json_atomic(self.record_path(stage, provider), record)

    def delete_record(self, stage: str, provider: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path(stage, provider).unlink()

    def records(self) -> list[dict[str, Any]]:
        """Every current record, all stages and providers."""
        out = []
        for path in sorted(self.path("deployments").glob("*/*.json")):
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(path.read_text(encoding="utf-8")))
        return out

    def next_version(self, stage: str, provider: str) -> int:
        """1 + the highest version ever deployed for this stage and provider."""
        versions = [
            e.get("version", 0)
            for e in self.history()
            if e.get("stage") == stage and e.get("provider") == provider
        ]
        return max(versions, default=0) + 1

    # -- history ---------------------------------------------------------------------
    def append_history(self, event: dict[str, Any]) -> None:
        """Append one event (deploy, destroy, failed deploy) to history.jsonl."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": now_iso(), "by": who(), **event}, sort_keys=True, default=str)
        with open(self.path("history.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[dict[str, Any]]:
        try:
            text = self.path("history.jsonl").read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        events = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events
