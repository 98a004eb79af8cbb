"""Remove what a deployed bundle never uses, safely.

Removed: ``__pycache__`` directories, ``*.pyc``/``*.pyo`` files, build-time-only inputs
(Cython ``*.pyx``/``*.pxd``/``*.pxi`` sources and their Tempita templates ``*.pyx.tp``/
``*.pxd.tp``/``*.pxi.tp``, ``*.pyi`` type stubs, and static archives ``*.a`` that start
with the ``ar`` magic, such as NumPy's ``libnpymath.a``: read by Cython, type checkers
and linkers, never when code runs; a shared library is never an archive), and packages'
own test suites (directories named ``tests`` or ``test`` *inside* a
package, i.e. whose parent has an ``__init__.py``; never at the top level, where a
distribution's own package could have that name). Kept: ``*.dist-info``
(``importlib.metadata`` reads it), every ``.so`` (elf_strip.py then drops their symbol
tables and debug info, never a mapped byte), modules such as ``numpy/testing`` that
are imported at runtime, and C headers and sources (CuPy compiles its headers at run
time with NVRTC, no host compiler needed; cffi can read a ``.h`` when it imports).

Bytecode is removed because what an install leaves is stale for Lambda: written by
another interpreter version or timestamp-checked (zips reset mtimes), with build paths
baked in. Lambda's ``/opt`` and ``/var/task`` are read-only, so a bundle without bytecode
compiles every module in memory on each cold start; the Lambda build therefore compiles
fresh bytecode *after* slimming, with an interpreter of the runtime's exact version and
``--invalidation-mode unchecked-hash`` (see bytecode.py and ``aws.bytecode``), and keeps
it where a cold start reads it (layer_bytecode.py).

The container image runs this file too, with ``--keep-bytecode``, in the same layer as
its pip install (``python slml_slim.py --keep-bytecode --site``): there the bytecode pip
wrote is right (the image's own interpreter, mtimes kept) and saves every start its
compile, so only the test suites and the build-only inputs go. It needs nothing but
the standard library.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

TEST_DIRS = frozenset({"tests", "test"})
BYTECODE = (".pyc", ".pyo")
BUILD_ONLY = (".pyx", ".pxd", ".pxi", ".pyi", ".pyx.tp", ".pxd.tp", ".pxi.tp")
AR_MAGIC = (b"!<arch>\n", b"!<thin>\n")  # static archives (GNU thin ones too)
REMOVED_SUFFIXES = BYTECODE + BUILD_ONLY


@dataclass(frozen=True)
class SlimReport:
    removed_files: int
    removed_bytes: int


def _tree_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            full = Path(dirpath) / name
            if not full.is_symlink():
                files += 1
                size += full.stat().st_size
    return files, size


def _removable_dir(path: Path, root: Path, *, keep_bytecode: bool = False) -> bool:
    if path.name == "__pycache__":
        return not keep_bytecode
    in_package = path.parent != root and (path.parent / "__init__.py").is_file()
    return path.name in TEST_DIRS and in_package and not path.parent.name.endswith(".dist-info")


def slim(root: Path, *, keep_bytecode: bool = False) -> SlimReport:
    """Delete caches, build-only sources and nested test suites under ``root`` in
    place (``keep_bytecode``: leave ``__pycache__`` and ``.pyc`` files). Idempotent."""
    root = Path(root)
    removed = BUILD_ONLY if keep_bytecode else REMOVED_SUFFIXES
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        here = Path(dirpath)
        for name in list(dirnames):
            candidate = here / name
            if _removable_dir(candidate, root, keep_bytecode=keep_bytecode):
                count, nbytes = _tree_size(candidate)
                files, size = files + count, size + nbytes
                shutil.rmtree(candidate)
                dirnames.remove(name)
        for name in filenames:
            full = here / name
            if name.endswith(removed) or static_archive(full):
                size += full.stat().st_size
                files += 1
                full.unlink()
    return SlimReport(removed_files=files, removed_bytes=size)


def static_archive(path: Path) -> bool:
    """Whether ``path`` is a regular ``*.a`` file holding an ``ar`` archive (objects
    for a linker; no loader or import reads one)."""
    if not path.name.endswith(".a") or path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(8) in AR_MAGIC


# What the Lambda adapter never imports (slml/runtime/lambda_handler.py answers events
# without an ASGI server or framework), and what nothing runs on Lambda: console
# scripts (``bin/``) and uv's ``.lock`` of the --target install.
# orjson too: its import (~8 ms) is paid on every cold start for microseconds saved on
# a Lambda-sized body (docs/PERFORMANCE.md), so the layer ships it only when asked for.
LAMBDA_UNUSED = ("uvicorn", "click", "h11", "httptools", "uvloop", "starlette", "anyio",
                 "sniffio", "mangum", "orjson")  # fmt: skip
LAMBDA_UNUSED_PATHS = ("bin", ".lock")


def lambda_unused(root: Path, pinned: set[str]) -> list[str]:
    """The distributions of ``LAMBDA_UNUSED`` installed under ``root`` that can go: not
    named by the model's requirements (``pinned``, normalised) and not required by any
    distribution that stays."""
    from slml.bundle.bytecode_only import installed_requirements  # host side only

    needs = installed_requirements(root)
    drop = {n for n in LAMBDA_UNUSED if n in needs and n not in pinned}
    changed = True
    while changed:
        kept = set(needs) - drop
        wanted = {d for name in kept for d in needs[name]} & drop
        changed = bool(wanted)
        drop -= wanted
    return sorted(drop)


def drop_lambda_unused_paths(root: Path) -> SlimReport:
    """Delete ``bin/`` (console scripts) and ``.lock`` at the top of an install."""
    files = size = 0
    for name in LAMBDA_UNUSED_PATHS:
        path = Path(root) / name
        if path.is_dir() and not path.is_symlink():
            count, nbytes = _tree_size(path)
            files, size = files + count, size + nbytes
            shutil.rmtree(path)
        elif path.is_file() or path.is_symlink():
            files, size = files + 1, size + path.lstat().st_size
            path.unlink()
    return SlimReport(removed_files=files, removed_bytes=size)


def main(argv: list[str] | None = None) -> int:
    """``python slim.py [--keep-bytecode] (--site | DIR...)``: slim directories in place
    (``--site``: this interpreter's site-packages) and print what went."""
    import argparse
    import sysconfig

    parser = argparse.ArgumentParser(description="remove test suites, build-only sources "
                                     "and stubs (and bytecode, unless kept) from installs")
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--site", action="store_true", help="this interpreter's site-packages")
    parser.add_argument("--keep-bytecode", action="store_true")
    args = parser.parse_args(argv)
    paths = sysconfig.get_paths()
    dirs = list(args.dirs) + ([Path(p) for p in {paths["purelib"], paths["platlib"]}]
                              if args.site else [])  # fmt: skip
    if not dirs:
        parser.error("name a directory or --site")
    for root in dirs:
        report = slim(root, keep_bytecode=args.keep_bytecode)
        print(f"slimmed {root}: {report.removed_files} files, "
              f"{report.removed_bytes / 1024 / 1024:.1f} MiB removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
