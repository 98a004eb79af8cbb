"""The project's ``.slml/`` directory: deployment records, history, builds, Pulumi state.

Layout::

    .slml/
      lock                          file lock held by every command that writes here
      deployments/<stage>/<provider>.json   the current record (absent: not deployed)
      history.jsonl                 every deploy and destroy, append-only
      builds/<provider>/            bundles built for each provider
      local/<stage>/                local servers' logs
      pulumi/                       Pulumi's file backend (default)
      .gitignore                    keeps secrets (passphrase, api_key) and machine-local
                                    files out of version control; written once

Records are written atomically (temp file + rename), so a crash or Ctrl-C mid-write
never leaves half a record; the lock serialises concurrent ``slml`` commands. Secrets
are written whole or not at all (temp file, fsync, link into place, 0600) and refused
when empty or malformed. This module never prints: whoever waits is told through the
``on_wait`` callback of ``lock``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from filelock import FileLock, Timeout

from slml.errors import DeployError

STATE_DIR = ".slml"
GITIGNORE = """\
# Written by slml (edit freely; slml never overwrites it).
# Secrets never belong in version control: the Pulumi passphrase decrypts the stack's
# secrets, an api_key opens an endpoint to whoever reads it.
passphrase
api_key
*.secret
# Machine-local: the project lock, built bundles, local servers' bundles and logs.
lock
builds/
local/
"""
SECRET_NAMES = ("passphrase", "api_key")
_SECRET_HINTS = {
    "passphrase": "it must hold the passphrase this stack's secrets were encrypted with: "
    "restore it from a backup (or set PULUMI_CONFIG_PASSPHRASE); only if the stack was "
    "never deployed, delete the file and slml generates a new one",
    "api_key": "delete the file and deploy again: slml generates a new key and the "
    "endpoint accepts only that one from then on",
}


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
    """The secret stored in ``path``; on first use a new random one (``create_secret``).
    Raises DeployError, naming the file and what to do, when it is empty or malformed
    (as a full disk could leave it): an empty key must never mean "no key"."""
    path = Path(path)
    if not path.exists():
        create_secret(path)
    return read_secret(path)


def create_secret(path: Path) -> None:
    """Write a new random secret to ``path`` (0600) whole or not at all: into a temp
    file, fsync, then linked into place, which never replaces an existing file (two
    processes racing agree on the first one's value). Writes ``.slml/.gitignore`` when
    ``path`` is inside a ``.slml`` directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.parents:
        if parent.name == STATE_DIR:
            ensure_gitignore(parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def read_secret(path: Path) -> str:
    """The secret in ``path`` without surrounding whitespace. Raises DeployError when
    the file is unreadable, empty, or holds control characters or several lines."""
    path = Path(path)
    hint = _SECRET_HINTS.get(path.name, "write the secret into it, or delete it")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"cannot read the secret file {path}: {exc}", hint=hint) from None
    if not value:
        raise DeployError(f"the secret file {path} is empty", hint=hint)
    if not value.isprintable():
        raise DeployError(
            f"the secret file {path} holds control characters or more than one line",
            hint=hint,
        )
    return value


def secret_warnings(paths: Iterable[Path]) -> list[str]:
    """One warning per existing secret file that others than its owner may read."""
    found = []
    for path in paths:
        with contextlib.suppress(OSError):
            mode = Path(path).stat().st_mode & 0o777
            if mode & 0o077:
                found.append(
                    f"the secret file {path} can be read by other users (mode {mode:o}): "
                    f"run `chmod 600 {path}`"
                )
    return found


def ensure_gitignore(state_dir: Path) -> None:
    """Write ``<state_dir>/.gitignore`` (secrets, lock, builds) unless one is there."""
    path = Path(state_dir) / ".gitignore"
    if path.exists():
        return
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gitignore.", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(GITIGNORE)
        os.chmod(tmp, 0o644)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RecordUnreadable(DeployError):
    """A deployment record exists but cannot be read or has the wrong shape."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the deployment record {path} is unreadable: {problem}",
            hint="`slml destroy --force` stops what the record described and sets it aside "
            "(local: every server of the stage, found by the marker it carries); or restore "
            "it from .slml/history.jsonl",
        )
        self.path = path


class ProjectState:
    """Reads and writes ``.slml/`` under ``root``. Safe across processes with ``lock()``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.dir = self.root / STATE_DIR

    # -- locking ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(
        self, *, timeout: float = 600.0, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the project lock. Blocks up to ``timeout`` s, then raises DeployError.
        When another command holds it, ``on_wait`` (e.g. a reporter) is told so first.
        Reentrant within a thread: ``slml.api`` holds it around a whole command, and the
        provider's own ``lock()`` inside it only counts up."""
        self.dir.mkdir(parents=True, exist_ok=True)
        ensure_gitignore(self.dir)
        lock = FileLock(str(self.dir / "lock"), is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(f"waiting for another slml command on {self.root} to finish...")
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

    def secret_files(self) -> list[Path]:
        """The secret files slml keeps under ``.slml/`` (passphrase, api keys)."""
        found: list[Path] = []
        for name in SECRET_NAMES:
            for pattern in (name, f"*/{name}", f"*/*/{name}"):
                found.extend(p for p in self.dir.glob(pattern) if p.is_file())
        return sorted(set(found))

    def record_path(self, stage: str, provider: str) -> Path:
        return self.path("deployments", stage, f"{provider}.json")

    # -- records ---------------------------------------------------------------------
    def read_record(self, stage: str, provider: str) -> dict[str, Any] | None:
        """The current deployment record, or None when not deployed. Raises
        RecordUnreadable when it cannot be read or is not a JSON object."""
        path = self.record_path(stage, provider)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RecordUnreadable(path, str(exc)) from None
        if not isinstance(record, dict):
            raise RecordUnreadable(path, f"it holds a JSON {type(record).__name__}, not an object")
        return record

    def set_aside_record(self, stage: str, provider: str) -> Path | None:
        """Rename an unreadable record to ``<name>.unreadable-<time>`` (kept for a look,
        never read again). Returns the new path, None when there was no record."""
        path = self.record_path(stage, provider)
        aside = path.with_name(f"{path.name}.unreadable-{now_iso().replace(':', '')}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return None
        return aside

    def write_record(self, stage: str, provider: str, record: dict[str, Any]) -> None:
        write_json_atomic(self.record_path(stage, provider), record)

    def delete_record(self, stage: str, provider: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path(stage, provider).unlink()

    def records(self) -> list[dict[str, Any]]:
        """Every current record, all stages and providers. A record that cannot be read
        or is not a JSON object is listed too, as ``{"stage", "provider", "state":
        "unreadable", "url": <what is wrong>}``: it may describe something running."""
        out = []
        for path in sorted(self.path("deployments").glob("*/*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                problem = None if isinstance(record, dict) else "not a JSON object"
            except (OSError, ValueError) as exc:
                record, problem = None, str(exc)
            if problem is None:
                out.append(record)
                continue
            out.append({"stage": path.parent.name, "provider": path.stem, "state": "unreadable",
                        "version": "?", "url": f"unreadable record {path}: {problem}; "
                        "`slml destroy --force` stops what it ran"})  # fmt: skip
        return out

    def next_version(self, stage: str, provider: str, *, seen: Iterable[int] = ()) -> int:
        """1 + the highest version known for this stage and provider: in the history, in
        the current record, and in ``seen`` (e.g. kept bundle directories), so a
        truncated history never hands out a number twice."""
        versions = [
            e.get("version")
            for e in self.history()
            if e.get("stage") == stage and e.get("provider") == provider
        ]
        with contextlib.suppress(DeployError):
            versions.append((self.read_record(stage, provider) or {}).get("version"))
        versions.extend(seen)
        return max((v for v in versions if _is_int(v)), default=0) + 1

    # -- history ---------------------------------------------------------------------
    def append_history(self, event: dict[str, Any]) -> None:
        """Append one event (deploy, destroy, failed deploy) to history.jsonl."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": now_iso(), "by": who(), **event}, sort_keys=True, default=str)
        with open(self.path("history.jsonl"), "a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() and (fh.seek(-1, os.SEEK_END), fh.read(1))[1] != b"\n":
                line = "\n" + line  # a line cut short by a crash stays on its own
            fh.write((line + "\n").encode("utf-8"))
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
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
