"""Atomic artifact writes: build in a hidden staging directory beside the target, then
rename it into place. A failed save leaves nothing behind; a replaced artifact is
swapped, never half-written.

And the read side every builder shares: ``verified_manifest`` (the one integrity check)
and ``copy_artifact`` (copy exactly the listed files, hashing what it copies)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slml.errors import ArtifactError, IntegrityError
from slml.runtime.manifest import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    ArtifactFormatError,
    ArtifactIntegrityError,
    artifact_digest,
    bounded_chunks,
    integrity_error,
    open_regular,
    parse_manifest,
    read_manifest,
    read_regular,
    shape_problems,
    verify_files,
)


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


# -- verifying and copying an artifact --------------------------------------------------
def verified_manifest(artifact_dir: Path) -> dict[str, Any]:
    """The artifact's manifest after checking every file's sha256 and that it holds
    nothing but listed regular files. The one check every builder runs.
    Raises ArtifactError (not an artifact) or IntegrityError (tampered files)."""
    with _as_slml_errors():
        manifest = read_manifest(Path(artifact_dir))
        verify_files(Path(artifact_dir), manifest)
    return manifest


def manifest_digest(artifact_dir: Path) -> str:
    """The artifact digest from the manifest alone (no file is hashed: cheap). Enough to
    compare with a pin before building; the build then verifies every file against that
    manifest. Raises ArtifactError."""
    with _as_slml_errors():
        return artifact_digest(read_manifest(Path(artifact_dir)))


def copy_artifact(
    src: Path, dest: Path, *, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Copy to ``dest`` (which must not exist) exactly the files ``src``'s manifest lists,
    and the manifest: nothing unlisted, never a symlink's target. Each file is hashed as
    it is copied and must match; with ``manifest`` (what the caller verified before),
    ``src`` must still be that very artifact. Returns the manifest copied. On failure
    ``dest`` is removed. Raises ArtifactError / IntegrityError."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True)
    try:
        with _as_slml_errors():
            return _copy_listed(src, dest, manifest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _copy_listed(src: Path, dest: Path, expected: dict[str, Any] | None) -> dict[str, Any]:
    data = read_regular(src / MANIFEST_FILE, MANIFEST_FILE, limit=MAX_MANIFEST_BYTES)
    manifest = parse_manifest(data, src / MANIFEST_FILE)
    if expected is not None and artifact_digest(manifest) != artifact_digest(expected):
        raise ArtifactIntegrityError(
            f"the model artifact at {src} changed while it was being built (it was "
            "re-saved or edited); build again once it is complete"
        )
    _check_shape(src, manifest)
    for rel, digest in sorted(manifest["files"].items()):
        _copy_file(src / rel, dest / rel, rel, digest)
    (dest / MANIFEST_FILE).write_bytes(data)
    return manifest


def _check_shape(src: Path, manifest: dict[str, Any]) -> None:
    problems = shape_problems(src, manifest)
    if problems:
        raise integrity_error(src, problems)


def _copy_file(source: Path, target: Path, rel: str, digest: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = open_regular(source, rel)
    try:
        info = os.fstat(fd)
        hashed = hashlib.sha256()
        with open(target, "xb") as out:
            for chunk in bounded_chunks(fd):
                hashed.update(chunk)
                out.write(chunk)
    finally:
        os.close(fd)
    if hashed.hexdigest() != digest:
        raise ArtifactIntegrityError(
            f"model artifact {source.parent} failed its integrity check: {rel} does not "
            "match its sha256 in the manifest"
        )
    os.chmod(target, stat.S_IMODE(info.st_mode) & 0o755 | 0o644)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


@contextlib.contextmanager
def _as_slml_errors() -> Iterator[None]:
    try:
        yield
    except ArtifactIntegrityError as exc:
        raise IntegrityError(
            str(exc), hint="re-save the model (slml.save_model) or restore its files"
        ) from None
    except ArtifactFormatError as exc:
        raise ArtifactError(str(exc), hint="check `model:` in slml.yaml") from None
