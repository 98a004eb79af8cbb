"""Sizes of bundle directories and deterministic zips.

``measure(dir)`` → ``SizeReport``: the unzipped total and the ten largest packages,
counted per distribution through ``*.dist-info/RECORD`` (so ``numpy.libs`` and
``numpy-2.x.dist-info`` count as numpy), falling back to top-level entries.
``zip_dir(src, dest)`` writes a zip whose bytes depend only on the files: sorted
entries, fixed timestamps (1980-01-01), normalised modes; so an unchanged layer has an
unchanged hash and Pulumi sees no diff.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from pathlib import Path

from slml.bundle.elf import record_owners
from slml.bundle.staging import staging_path
from slml.pipeline import SizeReport
from slml.units import MB as MB  # re-exported for bundle modules
from slml.units import human as human

_EPOCH = (1980, 1, 1, 0, 0, 0)


def files_under(root: Path, *, bytecode: bool = False) -> list[Path]:
    """Every regular file under ``root``, sorted by relative POSIX path; bytecode caches
    (written when a cached layer directory is imported in place) are skipped unless
    ``bytecode`` (a bundle that ships compiled ``__pycache__``, see bytecode.py)."""
    root = Path(root)
    out = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if bytecode or d != "__pycache__")
        out += [Path(dirpath) / n for n in names if not (Path(dirpath) / n).is_symlink()]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def package_sizes(root: Path, *, bytecode: bool = False) -> list[tuple[str, int]]:
    """(distribution or top-level entry, bytes), biggest first."""
    root = Path(root)
    owners = record_owners(root)
    totals: Counter[str] = Counter()
    for path in files_under(root, bytecode=bytecode):
        rel = path.relative_to(root).as_posix()
        owner = owners.get(rel)
        if owner is None:
            top = rel.split("/")[0]
            owner = top.split("-")[0] if top.endswith(".dist-info") else top
        totals[owner] += path.stat().st_size
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def measure(root: Path, *, top: int = 10, bytecode: bool = False) -> SizeReport:
    """The unzipped size of ``root`` and its ``top`` largest packages."""
    sizes = package_sizes(root, bytecode=bytecode)
    return SizeReport(unzipped=sum(s for _, s in sizes), largest=tuple(sizes[:top]))


def zip_dir(src: Path, dest: Path, *, prefix: str = "", bytecode: bool = False) -> Path:
    """Zip ``src``'s contents into ``dest`` (entries under ``prefix``, e.g. ``python/``),
    deterministically, ``__pycache__`` included only if ``bytecode``. Replaces ``dest``
    atomically; returns it."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_path(dest)  # a killed zip is swept by the next build
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in files_under(src, bytecode=bytecode):
            add_file(zf, path, prefix + path.relative_to(src).as_posix())
    os.replace(tmp, dest)
    return dest


def add_file(zf: zipfile.ZipFile, path: Path, arcname: str) -> None:
    """Add one file as every slml zip does: fixed timestamp (1980-01-01), mode 0755 if
    executable else 0644, deflated; so the entry depends only on the file's bytes."""
    info = zipfile.ZipInfo(arcname, _EPOCH)
    mode = 0o755 if os.access(path, os.X_OK) else 0o644
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as fh:
        zf.writestr(info, fh.read())


