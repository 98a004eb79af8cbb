"""Copy the serving runtime (``slml/runtime/``) into a bundle.

The bundle gets a minimal ``slml/__init__.py`` (a docstring and ``__version__``), not
slml's full package: only the runtime ships, and nothing of the build side.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import slml
import slml.runtime

_INIT = '''"""slml's serving runtime, as shipped inside a bundle (the rest of slml is not here)."""

__version__ = "{version}"
'''


def runtime_source() -> Path:
    """The directory of the installed ``slml.runtime`` package."""
    return Path(slml.runtime.__file__).resolve().parent


def copy_runtime(dest: Path) -> Path:
    """Write ``dest/slml/__init__.py`` (minimal) and ``dest/slml/runtime/**``, without
    caches. Returns ``dest/slml``. Overwrites a previous copy."""
    package = Path(dest) / "slml"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(_INIT.format(version=slml.__version__), encoding="utf-8")
    target = package / "runtime"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        runtime_source(), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    )
    return package
