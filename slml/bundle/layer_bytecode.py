"""Bytecode in the Lambda layer where a cold start reads it, source elsewhere.

The layer is compiled whole (bytecode.py: the runtime's exact interpreter,
unchecked-hash, ``/opt/python`` paths), then that interpreter walks the model's
*frameworks* inside the layer and every ``.pyc`` it did not read is deleted:

- the frameworks are the distributions the model requires that no other required
  distribution depends on (scikit-learn for a scikit-learn model, not the NumPy, SciPy
  and joblib it pulls in; onnxruntime for an ONNX export; a third-party estimator's
  package beside scikit-learn);
- the walk (``python -I -S -B``, the layer first on ``sys.path``, its ``lib/`` on
  ``LD_LIBRARY_PATH``) imports each framework's top-level modules and, in sorted order,
  every public submodule below them (no path part starting with ``_``, no ``tests``);
  an audit hook records every ``.pyc`` under the layer that Python opens. Loading and
  predicting with any model of those frameworks imports a subset of that (the
  implementation modules a pickle names are imported by the public ones); the iris
  model's Lambda init reads no source (``tests/bundle/test_lambda_bytecode.py``).

Safe by construction: a module without ``.pyc`` still imports, from its source, which
always ships; it is compiled in memory if a function ever imports it (``/opt`` is
read-only, so nothing is written). Only the speed of that import differs. Lock-keyed
and model-independent: the walk depends on the layer's files and the requirement
names (both in the layer's cache key), not on the model, so a model-only change
reuses the layer byte for byte. Deterministic: sorted walk, isolated interpreter,
fixed environment (``PATH`` empty, ``HOME`` and ``TMPDIR`` a scratch directory).

Every module keeps its bytecode instead (a note says why) when the walk cannot tell:
``aws.bytecode: full``, the layer's machine is not this one's (arm64 code on x86_64),
no required distribution is installed, a framework does not import here (a wheel for a
newer glibc than this host's, say), the walk reads nothing, fails or runs past
``WALK_TIMEOUT``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from slml.bundle.bytecode import Interpreter, compile_tree
from slml.bundle.lock import requirement_name
from slml.bundle.slim import installed_requirements
from slml.bundle.uvtool import Runner
from slml.units import human

WALK_TIMEOUT = 600  # seconds; scikit-learn's public modules take ~3 s here
_MACHINES = {"x86_64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}
_NOT_MODULES = ("__pycache__", "bin")
_WALK = r"""
import importlib, json, os, pkgutil, sys

spec = json.loads(sys.stdin.read())
prefix = spec["root"] + os.sep
read = set()


def hook(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].endswith(".pyc"):
        if args[0].startswith(prefix):
            read.add(args[0][len(prefix):])


sys.addaudithook(hook)
sys.path.insert(0, spec["root"])


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


failed = []
for name in spec["modules"]:
    top = load(name)
    if top is None:
        failed.append(name)
    else:
        walk(top)
with open(spec["out"], "w", encoding="utf-8") as fh:
    json.dump({"read": sorted(read), "failed": failed}, fh)
sys.stdout.flush()
os._exit(0)  # threads a module started must not keep the walk alive
"""


class WalkUnavailable(Exception):
    """The walk could not say what the frameworks read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Trimmed:
    """What ``trim_bytecode`` kept and deleted (``.pyc`` files and their bytes)."""

    kept_files: int
    kept_bytes: int
    removed_files: int
    removed_bytes: int


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


def foreign_machine(machine: str | None) -> str | None:
    """Why code for ``machine`` (Lambda's name: x86_64, arm64) cannot run here, or None."""
    here = platform.machine().lower()
    if machine is None or here in _MACHINES.get(machine, (machine,)):
        return None
    return f"{machine} code cannot run on this {here} machine to see what the frameworks import"


def walk_imports(
    interpreter: Interpreter, root: Path, modules: Sequence[str], *, lib: Path | None = None,
    runner: Runner = subprocess.run, timeout: float = WALK_TIMEOUT,
) -> frozenset[str]:  # fmt: skip
    """The ``.pyc`` files (POSIX paths relative to ``root``) ``interpreter`` reads while
    importing ``modules`` and their public submodules from ``root``. Blocking. Raises
    WalkUnavailable when a module does not import, the walk fails or times out."""
    root = Path(os.path.realpath(root))
    with tempfile.TemporaryDirectory(prefix="slml-walk-") as scratch:
        out = Path(scratch) / "walk.json"
        env = {"PATH": "", "HOME": scratch, "TMPDIR": scratch}
        if lib is not None and lib.is_dir():
            env["LD_LIBRARY_PATH"] = str(lib)
        spec = {"root": str(root), "modules": list(modules), "out": str(out)}
        command = [interpreter.path, "-I", "-S", "-B", "-W", "ignore", "-c", _WALK]
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
    if not result["read"]:
        raise WalkUnavailable("importing the frameworks read no bytecode from the layer")
    return frozenset(result["read"])


def trim_bytecode(root: Path, keep: frozenset[str]) -> Trimmed:
    """Delete every ``__pycache__/*.pyc`` under ``root`` whose relative POSIX path is not
    in ``keep``, and ``__pycache__`` directories left empty. Idempotent."""
    root = Path(root)
    counts = [0, 0, 0, 0]
    for cache in sorted(root.rglob("__pycache__")):
        for pyc in sorted(cache.glob("*.pyc")):
            size, kept = pyc.stat().st_size, pyc.relative_to(root).as_posix() in keep
            counts[0 if kept else 2] += 1
            counts[1 if kept else 3] += size
            if not kept:
                pyc.unlink()
        if not any(cache.iterdir()):
            cache.rmdir()
    return Trimmed(*counts)


def compile_layer(
    interpreter: Interpreter, root: Path, *, lambda_path: str, requirements: Sequence[str],
    full: bool = False, lib: Path | None = None, machine: str | None = None,
    runner: Runner = subprocess.run,
) -> list[str]:  # fmt: skip
    """Compile every module under ``root`` (code objects naming ``lambda_path``), then
    keep bytecode only for what importing the frameworks of ``requirements`` reads
    (every module when ``full`` or when the walk cannot tell). Returns the build notes.
    Raises PackagingError when compileall itself fails."""
    compiled = compile_tree(interpreter, root, lambda_path=lambda_path, runner=runner)
    notes = _failed_note(interpreter, compiled.failed)
    try:
        roots = _roots(root, requirements, full=full, machine=machine)
        modules = [m for dist in roots for m in top_level_modules(root, dist)]
        keep = walk_imports(interpreter, root, modules, lib=lib, runner=runner)
    except WalkUnavailable as why:
        return [*notes, f"bytecode for every module: {why.reason}"]
    trimmed = trim_bytecode(root, keep)
    its = "its" if len(roots) == 1 else "their"
    return [*notes, (
        f"bytecode for the {trimmed.kept_files} modules that importing {', '.join(roots)} "
        f"and {its} public modules reads ({human(trimmed.kept_bytes)}); the other "
        f"{trimmed.removed_files} ship as source only (-{human(trimmed.removed_bytes)}), "
        "compiled in memory if ever imported (aws.bytecode: full keeps them all)"
    )]  # fmt: skip


def _roots(root: Path, requirements: Sequence[str], *, full: bool, machine: str | None
           ) -> tuple[str, ...]:  # fmt: skip
    if full:
        raise WalkUnavailable("aws.bytecode: full")
    foreign = foreign_machine(machine)
    if foreign:
        raise WalkUnavailable(foreign)
    roots = framework_roots(root, requirements)
    if not roots:
        raise WalkUnavailable("the model requires no installed distribution to walk")
    return roots


def _failed_note(interpreter: Interpreter, failed: tuple[str, ...]) -> list[str]:
    """A note for sources that did not compile (Python 2 files some packages ship)."""
    if not failed:
        return []
    shown = ", ".join(failed[:3]) + (", ..." if len(failed) > 3 else "")
    return [
        f"{len(failed)} source files do not compile under Python "
        f"{interpreter.minor} ({shown}): shipped as source only"
    ]
