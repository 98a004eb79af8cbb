"""Atomic artifact writes: build in a hidden staging directory beside the target, then
rename it into place. A failed save leaves nothing behind; a replaced artifact is
swapped, never half-written."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from slml.errors import ArtifactError
from slml.runtime.manifest import MANIFEST_FILE


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a target that exists and is not empty, unless ``overwrite`` and it is an
    slml artifact (a directory of other things is never replaced)."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ArtifactError(f"{target} exists and is a file; an artifact is a directory")
    if not any(target.iterdir()):
        return
    if not (target / MANIFEST_FILE).is_file():
        raise ArtifactError(
            f"{target} exists and is not an slml artifact; refusing to replace it",
            hint="choose another path or remove the directory yourself",
        )
    if not overwrite:
        raise ArtifactError(
            f"an artifact already exists at {target}",
            hint="pass overwrite=True (or --overwrite) to replace it, or save a new version "
            "to another path",
        )


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A fresh staging directory on the target's file system (so the final rename is
    atomic), removed if the body raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_dir(target, "saving")
    tmp.mkdir()  # mode from the umask, unlike mkdtemp's 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish(staged: Path, target: Path, *, overwrite: bool) -> None:
    """Move ``staged`` to ``target``. An existing (checked) target is first renamed
    aside, then removed once the new one is in place."""
    check_target(target, overwrite=overwrite)
    old: Path | None = None
    if target.exists():
        old = _fresh_dir(target, "old")
        os.rename(target, old)
    try:
        os.rename(staged, target)
    except OSError as exc:
        if old is not None:
            os.rename(old, target)
        raise ArtifactError(f"cannot move the new artifact into {target}: {exc}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fresh_dir(target: Path, what: str) -> Path:
    """An unused hidden sibling path of ``target``."""
    while True:
        candidate = target.parent / f".{target.name}.{what}-{secrets.token_hex(4)}"
        if not candidate.exists():
            return candidate
