"""Who saved an artifact, when, where and from which commit."""

from __future__ import annotations

import datetime as dt
import getpass
import platform
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Runner = Callable[..., subprocess.CompletedProcess[str]]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def provenance(
    path: Path, *, runner: Runner = subprocess.run, clock: Clock = utc_now
) -> dict[str, Any]:
    """The manifest's provenance fields for an artifact to be written at ``path``."""
    from slml import __version__

    return {
        "python_version": platform.python_version(),
        "created_at": clock().astimezone(dt.UTC).isoformat(timespec="seconds"),
        "created_by": created_by(),
        "git_commit": git_commit(path, runner=runner),
        "slml_version": __version__,
    }


def created_by() -> str:
    """``user@host``; ``unknown`` stands in for what cannot be found."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry and no USER variable (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'unknown'}"


def git_commit(path: Path, *, runner: Runner = subprocess.run) -> str | None:
    """HEAD of the git repository holding ``path`` (or its nearest existing parent), or
    None when there is none, git is missing, or the repository has no commit. Never raises."""
    where = Path(path).absolute()
    while not where.is_dir() and where != where.parent:
        where = where.parent
    try:
        done = runner(
            ["git", "-C", str(where), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = (done.stdout or "").strip()
    return commit if done.returncode == 0 and len(commit) >= 40 else None
