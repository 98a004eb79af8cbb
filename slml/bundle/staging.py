"""Atomic writes into the shared build cache, and cleanup after builds that were killed.

A cache entry is built under a hidden sibling named ``.<final name>.tmp-<pid>-<random>``
and renamed into place when complete. A build killed with SIGKILL (or by a power cut)
never runs its ``finally``, so its staging entry stays; ``sweep`` removes the staging
entries of processes that no longer exist, and, for the entry a builder is about to
build under its lock, every staging entry of that name whoever left it. Nothing here
touches a finished entry.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path

MARK = ".tmp-"
_STAGED = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)-[0-9a-f]{8}$")


def staging_path(final: Path) -> Path:
    """A fresh, unused staging path beside ``final`` for this process."""
    final = Path(final)
    return final.with_name(f".{final.name}{MARK}{os.getpid()}-{secrets.token_hex(4)}")


def make_staging_dir(final: Path) -> Path:
    """Create and return an empty staging directory beside ``final``."""
    path = staging_path(final)
    path.mkdir(parents=True)
    return path


def sweep(parent: Path, *, claimed: str | None = None) -> list[Path]:
    """Remove, under ``parent``, the staging entries of dead processes, and every staging
    entry of the name ``claimed`` (call that only while holding the lock that guards
    building it). Returns what was removed; never raises for an entry that vanished."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in Path(parent).iterdir():
            match = _STAGED.match(entry.name)
            if match is None:
                continue
            if match["name"] == claimed or not _alive(int(match["pid"])):
                _remove(entry)
                removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
