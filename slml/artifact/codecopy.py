"""What the python flavor ships: the code a model needs and nothing that merely sits
beside it.

- From the class's own package: the package's modules (``.py`` files and the data files
  beside them) in the package and its sub-packages (directories with ``__init__.py``).
- From ``code_paths`` and ``artifacts`` directories: every file.
- Never: dotfiles and dot-directories (``.env``, ``.git/``), bytecode (``__pycache__``,
  ``.pyc``), virtual environments (a directory with ``pyvenv.cfg``), ``node_modules``,
  ``*.egg-info``/``*.dist-info``.
- A symlink or special file inside a directory is refused, never followed: a link to
  ``~/.aws`` must not put credentials in an artifact. A path you name yourself may be a
  link; it is resolved.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import sys
from pathlib import Path

from slml.errors import ArtifactError

_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".dist-info")


def copy_source(source: Path, dest: Path, *, what: str, packages_only: bool = False) -> None:
    """Copy the file or directory ``source`` to ``dest`` (which must not exist) by the
    rules above; ``packages_only`` keeps to package directories (the class's package).
    Raises ArtifactError for a missing source, a symlink or special file inside it."""
    source = Path(source)
    if not source.exists():
        raise ArtifactError(f"{what} {source} does not exist")
    real = source.resolve()
    if real.is_dir():
        _copy_dir(real, dest, what=f"{what} {source}", packages_only=packages_only)
    elif real.is_file():
        shutil.copy2(real, dest)
    else:
        raise ArtifactError(f"{what} {source} is not a regular file or directory")


def _copy_dir(root: Path, dest: Path, *, what: str, packages_only: bool) -> None:
    dest.mkdir()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path, target = Path(entry.path), dest / entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
            raise ArtifactError(
                f"{what}: {path.name} is {kind}; slml does not follow links or copy "
                "special files into an artifact",
                hint="replace the link with the file itself, or name the target directly",
            )
        if _skipped(entry.name, path, is_dir=stat.S_ISDIR(mode)):
            continue
        if stat.S_ISDIR(mode):
            if not packages_only or (path / "__init__.py").is_file():
                _copy_dir(path, target, what=what, packages_only=packages_only)
        else:
            shutil.copy2(path, target)


def _skipped(name: str, path: Path, *, is_dir: bool) -> bool:
    if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
        return True
    return is_dir and (name in _SKIP_DIRS or (path / "pyvenv.cfg").exists())


def shadowing(code_dir: Path, sources: dict[str, Path]) -> list[str]:
    """Top-level module names shipped in ``code_dir`` that Python would also find
    elsewhere: the standard library or an installed package (``sources`` maps a shipped
    name to where it was copied from, which is not a collision)."""
    clashes = []
    for name in sorted(_top_level_names(code_dir)):
        where = _found_elsewhere(name, sources.get(name))
        if where is not None:
            clashes.append(f"{name} ({where})")
    return clashes


def _top_level_names(code_dir: Path) -> set[str]:
    names = set()
    for entry in Path(code_dir).iterdir():
        if entry.is_file() and entry.suffix == ".py":
            names.add(entry.stem)
        elif entry.is_dir() and any(entry.rglob("*.py")):
            names.add(entry.name)
    return names


def _found_elsewhere(name: str, shipped_from: Path | None) -> str | None:
    if name in sys.stdlib_module_names:
        return "a standard library module"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    places = [spec.origin] if spec.origin not in (None, "built-in", "frozen") else []
    places += list(spec.submodule_search_locations or [])
    if not places:
        return "a built-in module"
    if shipped_from is not None:
        real = Path(shipped_from).resolve()  # the same file, or inside the same package
        if all(Path(p).resolve().is_relative_to(real) for p in places):
            return None
    return f"also found at {places[0]}"
