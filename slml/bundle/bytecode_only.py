"""Bytecode only for what importing the model's frameworks reads, proved by importing.

Standard library only: the Lambda layer's build runs it with the runtime's interpreter
(layer_bytecode.py), and the image's dependency layer runs this file as
``slml_bytecode.py`` with the image's interpreter, in pip's RUN layer (``main``).
``shrink``, on a tree whose modules are all compiled:

1. **walk**: ``python -I -S -B`` imports the frameworks (``framework_roots``: the
   required distributions no other required one depends on, scikit-learn and not the
   NumPy it pulls in), their top-level modules and, sorted, every public submodule (no
   part starting with ``_``, no ``tests``); an audit hook records the ``.pyc`` and
   ``.py`` files under the tree that Python opens, and the directories code lists;
2. **trim**: each ``__pycache__`` ``.pyc`` the walk did not read is deleted (that module
   keeps its source, compiled in memory if ever imported);
3. **bytecode only**: each module whose ``.pyc`` was read gets it as ``NAME.pyc``
   beside ``NAME.py`` (``__init__.pyc`` for a package), where CPython's
   SourcelessFileLoader finds it, and ``NAME.py`` is set aside; unless the walk opened
   that source (``inspect``) or code other than the import system listed its directory
   (``glob("*.py")`` finding plugins), or it belongs to ``SOURCE_READERS`` (torch);
4. **proof**: the walk again, on the final tree: every module the first walk imported
   must import, each sourceless one from its ``NAME.pyc``, and no source may be read
   that the first walk did not read. Then the set-aside sources are deleted; else every
   file goes back (step 2's layout) and ``Shrunk.kept_sources`` says why.

A traceback through a sourceless module names its file and line but shows no source
text: ``keep_sources`` (``requirements.source_code: keep``) stops after step 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

WALK_TIMEOUT = 600  # seconds; scikit-learn's public modules take ~3 s here
KEEP_SOURCES = "requirements.source_code: keep"
# Their JIT compilers read library source when a model runs, not when it imports, where
# no walk can see it: TorchScript scripting torch's own functions, Triton kernels.
SOURCE_READERS = ("torch", "torchaudio", "torchvision", "triton")
Runner = Callable[..., subprocess.CompletedProcess[str]]
_NOT_MODULES = ("__pycache__", "bin")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_REQUIRES = re.compile(r"^Requires-Dist:\s*([A-Za-z0-9][A-Za-z0-9._-]*)([^;\n]*)(;[^\n]*)?$", re.M)
_WALK = r"""
import importlib, importlib.metadata, json, os, pkgutil, sys
spec = json.loads(sys.stdin.read())
prefix, read = spec["root"] + os.sep, {".pyc": set(), ".py": set(), "listed": set()}
here = os.path.dirname(importlib.__file__) + os.sep  # importlib itself, unfrozen or not
finders = ("<frozen importlib", here + "_bootstrap", here + "metadata" + os.sep, pkgutil.__file__)
def hook(event, args):
    if not args or not isinstance(args[0], str):
        return
    path = os.path.normpath(os.path.join(os.getcwd(), args[0]))  # "..": one file, one name
    if event == "open" and path.startswith(prefix):
        found = read.get(os.path.splitext(path)[1])
        if found is not None:
            found.add(path[len(prefix):])
    elif event in ("os.listdir", "os.scandir") and (path + os.sep).startswith(prefix):
        caller = sys._getframe(1).f_code.co_filename  # code looking for files, not imports
        if not caller.startswith(finders):
            read["listed"].add(path[len(prefix):])
def load(name):
    try:
        return importlib.import_module(name)
    except BaseException:  # a public module may need what is not installed, or exit
        return None
def walk(package):
    found = pkgutil.iter_modules(getattr(package, "__path__", None) or [])
    for info in sorted(found, key=lambda i: i.name):
        if info.name.startswith("_") or info.name in ("tests", "test", "conftest"):
            continue
        module = load(f"{package.__name__}.{info.name}")
        if module is not None and info.ispkg:
            walk(module)
sys.addaudithook(hook)
sys.path.insert(0, spec["root"])
failed = []
for name in spec["modules"]:
    if (top := load(name)) is None:
        failed.append(name)
    else:
        walk(top)
with open(spec["out"], "w", encoding="utf-8") as fh:
    json.dump({"bytecode": sorted(read[".pyc"]), "sources": sorted(read[".py"]),
               "listed": sorted(read["listed"]), "modules": sorted(sys.modules),
               "failed": failed}, fh)
sys.stdout.flush()
os._exit(0)  # threads a module started must not keep the walk alive
"""


class WalkUnavailable(Exception):
    """The walk could not say what the frameworks read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Walk:
    """What importing the frameworks opened under the tree (relative POSIX paths): the
    ``.pyc`` and ``.py`` files, and the directories that code other than the import
    system listed (``glob("*.py")`` in a package's ``__init__``, say; "" is the root)."""

    bytecode: frozenset[str]
    sources: frozenset[str] = frozenset()
    listed: frozenset[str] = frozenset()
    modules: frozenset[str] = frozenset()  # every module imported, by name


@dataclass(frozen=True)
class Trimmed:
    """What ``trim_bytecode`` kept and deleted (``.pyc`` files and their bytes)."""

    kept_files: int
    kept_bytes: int
    removed_files: int
    removed_bytes: int


@dataclass(frozen=True)
class Moved:
    """A module made sourceless: its source and ``__pycache__`` file, relative paths."""

    source: str
    cached: str
    legacy: str  # NAME.pyc beside NAME.py


@dataclass(frozen=True)
class Shrunk:
    """What ``shrink`` did. ``kept_sources``: why every source stayed ("" when the
    ``sourceless`` modules were proved to import without theirs)."""

    roots: tuple[str, ...]
    trimmed: Trimmed
    sourceless: int = 0
    source_bytes: int = 0
    kept_sources: str = ""


def requirement_name(requirement: str) -> str:
    """The distribution name of a requirement line, normalised (PEP 503)."""
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1) if match else requirement.strip()).lower()


def installed_requirements(root: Path) -> dict[str, set[str]]:
    """Each installed distribution's unconditional requirements (extras left out), by
    normalised name, read from its METADATA."""
    out: dict[str, set[str]] = {}
    for info in Path(root).glob("*.dist-info"):
        meta = info / "METADATA"
        text = meta.read_text(encoding="utf-8", errors="replace") if meta.is_file() else ""
        needs = {
            requirement_name(m.group(1))
            for m in _REQUIRES.finditer(text)
            if not m.group(3) or "extra" not in m.group(3)
        }
        out[requirement_name(info.name.split("-")[0])] = needs
    return out


def framework_roots(root: Path, requirements: Iterable[str]) -> tuple[str, ...]:
    """The required distributions installed under ``root`` (normalised names) that no
    other required distribution needs, directly or through others, unless they need it
    back (a cycle keeps both). Sorted."""
    needs = installed_requirements(root)
    wanted = sorted({requirement_name(r) for r in requirements} & set(needs))
    closure = {name: _closure(name, needs) for name in wanted}
    return tuple(
        name
        for name in wanted
        if not any(name in closure[o] and o not in closure[name] for o in wanted if o != name)
    )


def _closure(name: str, needs: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(needs.get(name, ()))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += needs.get(dep, ())
    return seen


def top_level_modules(root: Path, distribution: str) -> tuple[str, ...]:
    """The importable top-level names ``distribution`` installed under ``root``, from its
    RECORD (``top_level.txt`` is often absent): packages, modules, extension modules."""
    names: set[str] = set()
    for info in Path(root).glob("*.dist-info"):
        if requirement_name(info.name.split("-")[0]) != distribution:
            continue
        record = info / "RECORD"
        text = record.read_text("utf-8") if record.is_file() else ""
        rows = csv.reader(text.splitlines())
        names |= {name for row in rows if row and (name := _module_name(row[0]))}
    return tuple(sorted(names))


def _module_name(path: str) -> str | None:
    first, _, rest = path.partition("/")
    if rest:  # a directory: a package unless it is metadata, a .libs or scripts
        name = first
    elif first.endswith((".py", ".so")):
        name = first.split(".")[0]
    else:
        return None
    return name if name.isidentifier() and name not in _NOT_MODULES else None


def walk_imports(
    python: str, root: Path, modules: Sequence[str], *, lib: str | Path | None = None,
    runner: Runner = subprocess.run, timeout: float = WALK_TIMEOUT,
) -> Walk:  # fmt: skip
    """What ``python`` opens under ``root`` while importing ``modules`` and their public
    submodules from it (``lib``: ``LD_LIBRARY_PATH``). Blocking. Raises WalkUnavailable
    when a module does not import, the walk reads no bytecode, fails or times out."""
    root = Path(os.path.realpath(root))
    with tempfile.TemporaryDirectory(prefix="slml-walk-") as scratch:
        out = Path(scratch) / "walk.json"
        env = {"PATH": "", "HOME": scratch, "TMPDIR": scratch}
        if lib:
            env["LD_LIBRARY_PATH"] = str(lib)
        spec = {"root": str(root), "modules": list(modules), "out": str(out)}
        command = [python, "-I", "-S", "-B", "-W", "ignore", "-c", _WALK]
        try:
            done = runner(command, input=json.dumps(spec), capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise WalkUnavailable(f"the import walk ran past {timeout:.0f} s") from None
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise WalkUnavailable(f"the import walk failed ({tail[0][:200]})")
        result = json.loads(out.read_text("utf-8"))
    if result["failed"]:
        raise WalkUnavailable(f"{', '.join(result['failed'])} did not import here")
    if not result["bytecode"]:
        raise WalkUnavailable("importing the frameworks read no bytecode")
    return Walk(*(frozenset(result[k]) for k in ("bytecode", "sources", "listed", "modules")))


def _in_scope(relative: str, scope: frozenset[str] | None) -> bool:
    """Whether the file at ``relative`` belongs to a top-level module in ``scope``."""
    first, _, rest = relative.partition("/")
    if first == "__pycache__":  # a top-level module's bytecode: NAME.TAG.pyc
        first = rest.split(".", 1)[0]
    return scope is None or first in scope


def trim_bytecode(root: Path, keep: frozenset[str], *, scope: frozenset[str] | None = None
                  ) -> Trimmed:  # fmt: skip
    """Delete every ``__pycache__/*.pyc`` under ``root`` whose relative POSIX path is not
    in ``keep`` (only below the top-level names in ``scope``, if given), and the
    ``__pycache__`` directories left empty. Idempotent."""
    root = Path(root)
    counts = [0, 0, 0, 0]
    for cache in sorted(root.rglob("__pycache__")):
        for pyc in sorted(cache.glob("*.pyc")):
            relative = pyc.relative_to(root).as_posix()
            if not _in_scope(relative, scope):
                continue
            size, kept = pyc.stat().st_size, relative in keep
            counts[0 if kept else 2] += 1
            counts[1 if kept else 3] += size
            if not kept:
                pyc.unlink()
        if not any(cache.iterdir()):
            cache.rmdir()
    return Trimmed(*counts)


def sourceless_candidates(root: Path, walk: Walk, *, scope: frozenset[str] | None = None
                          ) -> list[Moved]:  # fmt: skip
    """The modules whose ``__pycache__`` bytecode (this interpreter's, no optimisation
    level) the walk read, with a regular ``NAME.py`` and no ``NAME.pyc`` there yet,
    unless the walk opened that source or code listed its directory."""
    found = []
    for cached in sorted(walk.bytecode):
        folder, _, name = cached.rpartition("/")
        parent, _, cache = folder.rpartition("/")
        stem, *tag = name.split(".")
        source = f"{parent}/{stem}.py".lstrip("/")
        if cache != "__pycache__" or len(tag) != 2 or parent in walk.listed:
            continue
        path, legacy = Path(root) / source, source + "c"
        if source in walk.sources or path.is_symlink() or not path.is_file():
            continue
        if _in_scope(cached, scope) and not os.path.lexists(Path(root) / legacy):
            found.append(Moved(source, cached, legacy))
    return found


def set_aside(root: Path, moves: Sequence[Moved], aside: Path) -> int:
    """Move each ``.pyc`` to its legacy place and its source under ``aside``. Returns the
    sources' bytes. On an error, what moved stays moved: ``put_back`` undoes it."""
    size = 0
    for move in moves:
        os.replace(root / move.cached, root / move.legacy)
        dest = aside / move.source
        dest.parent.mkdir(parents=True, exist_ok=True)
        size += (root / move.source).stat().st_size
        shutil.move(root / move.source, dest)
    return size


def put_back(root: Path, moves: Sequence[Moved], aside: Path) -> None:
    """Undo ``set_aside`` for every move, whatever part of it was done."""
    for move in moves:
        if os.path.lexists(root / move.legacy):
            (root / move.cached).parent.mkdir(exist_ok=True)
            os.replace(root / move.legacy, root / move.cached)
        if os.path.lexists(aside / move.source):
            shutil.move(aside / move.source, root / move.source)


def proof_failure(first: Walk, again: Walk, moves: Sequence[Moved]) -> str:
    """Why the second walk does not prove the sourceless layout ("" when it does)."""
    lost = sorted(first.modules - again.modules)
    unread = [m.legacy for m in moves if m.legacy not in again.bytecode]
    new = sorted(again.sources - first.sources)
    if lost:
        return f"importing again without the sources, {_some(lost)} did not import"
    if unread:
        return f"importing again, {_some(unread)} did not load from bytecode alone"
    return f"importing again read sources the first walk did not: {_some(new)}" if new else ""


def _some(items: Sequence[str]) -> str:
    return items[0] + (f" and {len(items) - 1} more" if len(items) > 1 else "")


def shrink(
    python: str, root: Path, requirements: Iterable[str], *, lib: str | Path | None = None,
    scope: frozenset[str] | None = None, keep_sources: bool = False,
    runner: Runner = subprocess.run, timeout: float = WALK_TIMEOUT,
) -> Shrunk:  # fmt: skip
    """Walk, trim, make sourceless and prove (the module's docstring), in place, with
    ``python`` (the target's interpreter). Only files below the top-level names in
    ``scope`` change, if given. Raises WalkUnavailable, having changed nothing, when no
    required distribution is installed or the first walk cannot tell."""
    root = Path(root)
    roots = framework_roots(root, requirements)
    if not roots:
        raise WalkUnavailable("the model requires no installed distribution to walk")
    modules = [m for dist in roots for m in top_level_modules(root, dist)]

    def walk() -> Walk:
        return walk_imports(python, root, modules, lib=lib, runner=runner, timeout=timeout)

    first = walk()
    trimmed = trim_bytecode(root, first.bytecode, scope=scope)
    if keep_sources:
        return Shrunk(roots, trimmed, kept_sources=KEEP_SOURCES)
    readers = {m for dist in SOURCE_READERS for m in top_level_modules(root, dist)}
    moves = [m for m in sourceless_candidates(root, first, scope=scope)
             if m.source.split("/", 1)[0] not in readers]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=".slml-sources-", dir=root.parent) as scratch:
        aside, size = Path(scratch), 0
        try:
            size = set_aside(root, moves, aside)
            failure = proof_failure(first, walk(), moves)
        except (OSError, WalkUnavailable) as why:
            failure = getattr(why, "reason", None) or f"moving the files failed ({why})"
        except BaseException:  # interrupted: never leave a module without its source
            put_back(root, moves, aside)
            raise
        if failure:
            put_back(root, moves, aside)
            return Shrunk(roots, trimmed, kept_sources=failure)
    for cache in sorted({(root / m.cached).parent for m in moves}):  # emptied caches
        if cache.is_dir() and not any(cache.iterdir()):
            cache.rmdir()
    return Shrunk(roots, trimmed, sourceless=len(moves), source_bytes=size)


def lock_scope(root: Path, lock: Path) -> frozenset[str]:
    """The top-level modules the distributions pinned in ``lock`` installed under
    ``root``: what the image's dependency layer installed, not the base image's pip."""
    names = set()
    for line in Path(lock).read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(requirement_name(line))
    return frozenset(m for name in sorted(names) for m in top_level_modules(root, name))


def main(argv: list[str] | None = None) -> int:
    """``python slml_bytecode.py (--site | --root DIR) [--lock FILE] [--keep-sources]
    NAME...``: shrink the tree for the frameworks among ``NAME...`` and print what it
    did. A walk that cannot tell changes nothing and is no error."""
    parser = argparse.ArgumentParser(description="keep the bytecode importing the "
                                     "frameworks reads, as bytecode only once proved")
    parser.add_argument("requirements", nargs="*", metavar="NAME")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--site", action="store_true", help="this interpreter's site-packages")
    where.add_argument("--root", type=Path)
    parser.add_argument("--lock", type=Path, help="change only what its pins installed")
    parser.add_argument("--keep-sources", action="store_true")
    args = parser.parse_args(argv)
    root = Path(sysconfig.get_paths()["purelib"]) if args.site else args.root
    scope = lock_scope(root, args.lock) if args.lock else None
    try:
        done = shrink(sys.executable, root, args.requirements, scope=scope,
                      lib=os.environ.get("LD_LIBRARY_PATH"), keep_sources=args.keep_sources)
    except WalkUnavailable as unavailable:
        print(f"{root}: bytecode and source for every module ({unavailable.reason})")
        return 0
    proof = f"every source kept: {done.kept_sources}" if done.kept_sources else "proved"
    print(f"{root}: {done.sourceless} modules as bytecode only ({proof}), "
          f"{done.trimmed.removed_files} unread .pyc removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
