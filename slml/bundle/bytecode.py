"""Bytecode compiled for the target's own Python, so Lambda cold starts skip compiling.

Lambda's ``/opt`` and ``/var/task`` are read-only: a bundle without ``__pycache__`` makes
Python compile every module of numpy, SciPy and scikit-learn in memory on each cold
start (measured: 7.0 s of init instead of 2.3 s). Slimming removes *stale* bytecode
(another interpreter's, timestamp-checked, with build paths baked in); this module adds
it back the only way that is valid on Lambda:

- compiled by an interpreter of the target's exact minor version (bytecode is
  version-specific, not platform-specific, so an x86_64 host can compile for arm64);
- ``--invalidation-mode unchecked-hash``: Python loads the ``.pyc`` without looking at
  source mtimes (zips reset them) or hashing the source;
- ``-s <dir> -p <Lambda path>`` so code objects name ``/opt/python/...`` (layer) and
  ``/var/task/...`` (function), the paths the files have on Lambda.

``aws.bytecode`` chooses: ``auto`` compiles when such an interpreter is here (this very
interpreter, else ``uv python find`` without downloads, else ``python3.X`` on PATH),
``always`` fails without one, ``never`` ships no bytecode.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slml.bundle.uvtool import Runner, run_uv
from slml.errors import PackagingError

Mode = Literal["auto", "always", "never"]
LAYER_ROOT = "/opt/python"  # where Lambda mounts a layer's python/ directory
TASK_ROOT = "/var/task"  # where Lambda unpacks the function zip
_PROBE = "import sys, platform; print(sys.implementation.cache_tag, platform.python_version())"
_ERROR_PREFIX = "*** Error compiling "


@dataclass(frozen=True)
class Interpreter:
    """A CPython that can compile bytecode for one minor version."""

    path: str
    version: str  # full version, e.g. "3.11.7"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


Finder = Callable[[str], "Interpreter | None"]


@dataclass(frozen=True)
class Compiled:
    """What ``compile_tree`` did: ``.pyc`` files written, their bytes, and the sources
    that did not compile (e.g. Python 2 files some packages ship; never imported)."""

    files: int
    size: int
    failed: tuple[str, ...] = ()


def probe(path: str, *, runner: Runner = subprocess.run) -> Interpreter | None:
    """The interpreter at ``path`` if it runs and is CPython, else None (a pyenv shim
    for a version that is not active exits non-zero: not an interpreter)."""
    try:
        done = runner(
            [path, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    words = (done.stdout or "").split()
    if done.returncode != 0 or len(words) != 2 or not words[0].startswith("cpython-"):
        return None
    return Interpreter(path=path, version=words[1])


def find_interpreter(minor: str, *, runner: Runner = subprocess.run) -> Interpreter | None:
    """A CPython ``minor`` (e.g. ``"3.12"``) on this machine, or None. Tries this
    interpreter, then ``uv python find`` (never downloading one), then ``python3.X`` on
    PATH; each candidate is run once to confirm its version."""
    if (
        sys.implementation.name == "cpython"
        and f"{sys.version_info[0]}.{sys.version_info[1]}" == minor
    ):
        return Interpreter(path=sys.executable, version=platform.python_version())
    candidates = []
    try:
        found = run_uv(
            ["python", "find", f"cpython@{minor}", "--no-python-downloads"],
            runner=runner, env={"UV_PYTHON_DOWNLOADS": "never"},
        )  # fmt: skip
        candidates.append(found.stdout.strip())
    except PackagingError:
        pass
    candidates.append(shutil.which(f"python{minor}") or "")
    for path in filter(None, candidates):
        interpreter = probe(path, runner=runner)
        if interpreter and interpreter.minor == minor:
            return interpreter
    return None


def choose_interpreter(
    mode: Mode, minor: str, *, finder: Finder | None = None
) -> tuple[Interpreter | None, str]:
    """The interpreter to compile with (None: ship no bytecode) and a note saying why.
    Raises PackagingError for ``always`` when there is none."""
    if mode == "never":
        return None, "no bytecode (aws.bytecode: never): cold starts compile every module"
    found = (finder or find_interpreter)(minor)
    if found is not None:
        return found, ""
    if mode == "always":
        raise PackagingError(
            f"aws.bytecode: always needs a Python {minor} interpreter on this machine to "
            f"compile bytecode for python{minor}, and none was found (this interpreter, "
            f"`uv python find {minor}`, python{minor} on PATH)",
            hint=f"install one (`uv python install {minor}`) or set aws.bytecode: auto",
        )
    return None, (
        f"no Python {minor} interpreter here: shipping without bytecode; cold starts "
        f"recompile (install python{minor} or set aws.bytecode: never to silence)"
    )


def compile_tree(
    interpreter: Interpreter, root: Path, *, lambda_path: str, runner: Runner = subprocess.run,
    skip: str | None = None,
) -> Compiled:  # fmt: skip
    """Compile every ``.py`` under ``root`` into ``__pycache__`` (unchecked-hash), with
    code objects naming ``lambda_path/...``; ``skip`` names a directory under ``root``
    left alone (the model artifact: bytecode in it would be unlisted, and refused).
    Sources that do not compile are listed, not fatal; raises PackagingError when
    compileall itself fails."""
    root = Path(root).resolve()
    exclude = ["-x", re.escape(f"{root / skip}{os.sep}")] if skip else []
    command = [
        interpreter.path, "-m", "compileall", "-q", "-j", "0", *exclude,
        "--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", lambda_path, str(root),
    ]  # fmt: skip
    done = runner(command, capture_output=True, text=True, check=False)
    failed = tuple(
        _relative(line.removeprefix(_ERROR_PREFIX), root)
        for line in (done.stdout or "").splitlines()
        if line.startswith(_ERROR_PREFIX)
    )
    if done.returncode != 0 and not failed:
        tail = (done.stderr or done.stdout or "(no output)").strip()[-1500:]
        raise PackagingError(
            f"compiling bytecode with Python {interpreter.version} failed "
            f"(exit code {done.returncode}):\n{tail}",
            hint="set aws.bytecode: never to ship without bytecode",
        )
    files, size = bytecode_size(root)
    return Compiled(files=files, size=size, failed=failed)


def _relative(quoted: str, root: Path) -> str:
    path = quoted.rstrip(".").strip("'\"")
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def bytecode_size(root: Path) -> tuple[int, int]:
    """``(files, bytes)`` of the ``.pyc`` files in ``__pycache__`` directories under root."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        if os.path.basename(dirpath) != "__pycache__":
            continue
        for name in names:
            if name.endswith(".pyc"):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, name))
    return files, size
