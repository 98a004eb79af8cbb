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

``aws.bytecode`` chooses: ``auto`` compiles when such an interpreter is here,
``always`` fails without one, ``never`` ships no bytecode. The layer then keeps the
bytecode of what importing the model's frameworks reads, as bytecode only where that is
proved (layer_bytecode.py); ``full`` keeps every module's bytecode and every source and,
like ``always``, fails without an interpreter. ``find_interpreter`` looks
wherever users keep Pythons (``interpreter_candidates``: this interpreter, ``python3.X``
on PATH, pyenv's versions, uv-managed Pythons, asdf, mise, conda environments), runs
each candidate once to confirm it is CPython of that version (a pyenv shim for an
inactive version answers "command not found": skipped), and never downloads one.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from slml.bundle.uvtool import Runner, run_uv
from slml.errors import PackagingError

Mode = Literal["auto", "always", "full", "never"]
LAYER_ROOT = "/opt/python"  # where Lambda mounts a layer's python/ directory
TASK_ROOT = "/var/task"  # where Lambda unpacks the function zip
_PROBE = "import sys, platform; print(sys.implementation.cache_tag, platform.python_version())"
_ERROR_PREFIX = "*** Error compiling "


@dataclass(frozen=True)
class Interpreter:
    """A CPython that can compile bytecode for one minor version."""

    path: str
    version: str  # full version, e.g. "3.11.7"
    source: str = field(default="", compare=False)  # where it was found, e.g. "pyenv"

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


def find_interpreter(
    minor: str, *, runner: Runner = subprocess.run, env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Interpreter | None:  # fmt: skip
    """A CPython ``minor`` (e.g. ``"3.12"``) on this machine, or None: the first of
    ``interpreter_candidates`` that runs and reports that version. Never downloads."""
    if (
        sys.implementation.name == "cpython"
        and f"{sys.version_info[0]}.{sys.version_info[1]}" == minor
    ):
        return Interpreter(sys.executable, platform.python_version(), "this interpreter")
    seen: set[str] = set()
    for source, path in interpreter_candidates(minor, runner=runner, env=env, home=home):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        found = probe(path, runner=runner)
        if found and found.minor == minor:
            return Interpreter(found.path, found.version, source)
    return None


def interpreter_candidates(
    minor: str, *, runner: Runner = subprocess.run, env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Iterator[tuple[str, str]]:  # fmt: skip
    """``(where, path)`` of every place a Python ``minor`` may be, in order: PATH,
    pyenv (``$PYENV_ROOT`` or ~/.pyenv), uv-managed Pythons (``uv python find
    --managed-python``, downloads off), asdf (``$ASDF_DATA_DIR`` or ~/.asdf), mise,
    conda (``$CONDA_PREFIX``, the root of ``$CONDA_EXE``, ~/miniconda3 and the like,
    and their ``envs/*``). Newest patch release first within a manager. Unverified."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    exe = f"python{minor}"
    on_path = shutil.which(exe, path=env.get("PATH", ""))
    if on_path:
        yield "PATH", on_path
    pyenv = Path(env.get("PYENV_ROOT") or home / ".pyenv") / "versions"
    yield from (("pyenv", p) for p in _versioned(pyenv, minor, exe))
    uv = _uv_managed(minor, runner, env)
    if uv:
        yield "uv", uv
    asdf = Path(env.get("ASDF_DATA_DIR") or home / ".asdf") / "installs" / "python"
    yield from (("asdf", p) for p in _versioned(asdf, minor, exe))
    mise = Path(env.get("MISE_DATA_DIR") or home / ".local/share/mise") / "installs" / "python"
    yield from (("mise", p) for p in _versioned(mise, minor, exe))
    for root in _conda_roots(env, home):
        for prefix in (root, *sorted((root / "envs").glob("*"))):
            if (prefix / "bin" / exe).is_file():
                yield "conda", str(prefix / "bin" / exe)


def _versioned(root: Path, minor: str, exe: str) -> list[str]:
    """``root/<minor>.N/bin/<exe>`` for every patch release N there, newest first."""
    found = []
    for entry in root.glob(f"{minor}.*") if root.is_dir() else ():
        patch = entry.name.removeprefix(f"{minor}.")
        if patch.isdigit() and (entry / "bin" / exe).is_file():
            found.append((int(patch), str(entry / "bin" / exe)))
    return [path for _, path in sorted(found, reverse=True)]


def _uv_managed(minor: str, runner: Runner, env: Mapping[str, str]) -> str | None:
    """The uv-managed CPython ``minor`` (``uv python install``), if any; uv is told
    to consider only its own installs (it stops at a broken shim on PATH otherwise)."""
    where = {k: env[k] for k in ("UV_PYTHON_INSTALL_DIR",) if env.get(k)}
    try:
        found = run_uv(
            ["python", "find", f"cpython@{minor}", "--managed-python", "--no-python-downloads"],
            runner=runner, env={"UV_PYTHON_DOWNLOADS": "never", **where},
        )  # fmt: skip
    except PackagingError:
        return None
    return found.stdout.strip() or None


def _conda_roots(env: Mapping[str, str], home: Path) -> list[Path]:
    roots = [Path(env["CONDA_PREFIX"])] if env.get("CONDA_PREFIX") else []
    if env.get("CONDA_EXE"):
        roots.append(Path(env["CONDA_EXE"]).parent.parent)
    names = ("miniconda3", "anaconda3", "miniforge3", "mambaforge", ".conda")
    roots += [home / name for name in names] + [Path("/opt/conda")]
    return [root for root in dict.fromkeys(roots) if root.is_dir()]


def choose_interpreter(
    mode: Mode, minor: str, *, finder: Finder | None = None
) -> tuple[Interpreter | None, str]:
    """The interpreter to compile with (None: ship no bytecode) and a note saying why.
    Raises PackagingError for ``always`` and ``full`` when there is none."""
    if mode == "never":
        return None, "no bytecode (aws.bytecode: never): cold starts compile every module"
    found = (finder or find_interpreter)(minor)
    if found is not None:
        return found, ""
    if mode in ("always", "full"):
        raise PackagingError(
            f"aws.bytecode: {mode} needs a Python {minor} interpreter on this machine to "
            f"compile bytecode for python{minor}, and none was found (looked in this "
            f"interpreter, PATH, pyenv, uv-managed Pythons, asdf, mise and conda)",
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
    """``(files, bytes)`` of the ``.pyc`` files under root: in ``__pycache__`` directories
    and, for modules shipped as bytecode only (bytecode_only.py), beside their package."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.endswith(".pyc"):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, name))
    return files, size
