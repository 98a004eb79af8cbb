"""Turn the failures that are not slml bugs into ``SlmlError``s with a way out.

``translate(exc, provider=)`` is called by the CLI's one error mapping for every
exception that is not already an ``SlmlError``:

- an ``ImportError`` of an optional package → ``ProviderUnavailable`` naming the pip
  extra to install (``pip install 'slml[aws]'``);
- ``ENOSPC``/``EDQUOT`` anywhere in the exception's chain → ``DiskFull`` saying where:
  the file being written when the OS says, and the free space of the places slml
  writes to (the project's ``.slml/`` and the build cache).

Anything else returns None: it is an slml bug and is reported as one.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from slml.errors import DiskFull, SlmlError, missing_extra
from slml.units import human

FULL = {errno.ENOSPC, errno.EDQUOT}
DISK_HINT = (
    "free some space there (the build cache is safe to delete: rm -rf ~/.cache/slml, "
    "or set SLML_CACHE_DIR to a larger disk) and run it again"
)


def translate(exc: BaseException, *, provider: str | None = None) -> SlmlError | None:
    """The user-facing error for ``exc``, or None when ``exc`` is an slml bug."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in FULL:
            return disk_full(link)
    if isinstance(exc, ImportError):
        return missing_extra(exc, extra=_extra_of(provider))
    return None


def with_disk_hint(exc: SlmlError) -> SlmlError:
    """``exc`` with the full-disk hint when its message quotes a tool's ENOSPC (uv's
    stderr in a PackagingError) and it has no hint of its own."""
    if exc.hint is None and "No space left on device" in exc.message:
        exc.hint = DISK_HINT
    return exc


def disk_full(exc: OSError) -> DiskFull:
    """``DiskFull`` for an ENOSPC/EDQUOT ``OSError``, naming the path and free space."""
    what = "quota is exceeded" if exc.errno == errno.EDQUOT else "disk is full"
    target = exc.filename or exc.filename2
    where = f" writing {os.fsdecode(target)}" if target else ""
    free = "; ".join(f"{label} {path}: {_free(path)}" for label, path in _places(target))
    return DiskFull(
        f"the {what} (no space left on device){where}; free space: {free}",
        hint=DISK_HINT,
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _places(target: object) -> list[tuple[str, Path]]:
    from slml.bundle import cache_dir

    places = [("project", Path.cwd() / ".slml"), ("build cache", cache_dir())]
    if target:
        places.insert(0, ("file system of", Path(os.fsdecode(target)).parent))  # type: ignore[arg-type]
    return places


def _free(path: Path) -> str:
    """Free bytes on the file system holding ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return _size(shutil.disk_usage(probe).free)
    except OSError:
        return "unknown"


_size = human  # slml.units: one size format everywhere


def _extra_of(provider: str | None) -> str | None:
    return {"sagemaker": "aws"}.get(provider or "", provider) if provider != "local" else None
