"""Helpers for the artifact tests (a uniquely named module: test dirs have no
__init__.py, so ``conftest`` would be ambiguous)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slml.runtime.manifest import MANIFEST_FILE


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / MANIFEST_FILE).read_text())


def siblings(path: Path) -> list[str]:
    """Every entry (hidden ones too) in the parent of ``path``."""
    return sorted(p.name for p in Path(path).parent.iterdir())


def import_user_module(src_dir: Path, name: str, source: str) -> Any:
    """Write ``src_dir/name.py`` and import it, as a user's own model module would be.
    Callers remove ``src_dir`` from sys.path and ``name`` from sys.modules afterwards
    (the ``user_modules`` fixture does)."""
    import importlib
    import sys
    import textwrap

    src_dir.mkdir(parents=True, exist_ok=True)
    (src_dir / f"{name}.py").write_text(textwrap.dedent(source))
    if str(src_dir) not in sys.path:
        sys.path.insert(0, str(src_dir))
    importlib.invalidate_caches()
    return importlib.import_module(name)
