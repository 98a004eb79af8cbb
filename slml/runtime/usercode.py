"""Importing a python-flavor model's own code (stdlib only; used only by that flavor).

The code is imported from source only, through a path hook that claims the artifact's
``code_dir`` and nothing else:

- every source file is read once and checked against its sha256 in the manifest as it
  is compiled (hash what you run), and, when the artifact was verified, an unlisted
  file is refused;
- bytecode is never read from the artifact nor written into it: a ``__pycache__`` there
  cannot stand in for the source it claims to be compiled from;
- ``code_dir`` goes at the END of ``sys.path``, so the artifact's modules never shadow
  the runtime's own (a shipped ``h11.py`` does not replace the server's h11); the
  model's own top-level module is imported from ``code_dir`` explicitly.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from slml.runtime.manifest import ArtifactFormatError, ArtifactIntegrityError, read_regular

if TYPE_CHECKING:
    from typing_extensions import Buffer


@dataclass(frozen=True)
class _Code:
    """What the hook knows of one code_dir: listed files (absolute path → sha256) and
    whether unlisted files are refused (the artifact was verified)."""

    files: dict[str, str]
    strict: bool

    def check(self, path: str, data: bytes) -> None:
        expected = self.files.get(path)
        if expected is None and self.strict:
            raise ArtifactIntegrityError(
                f"{path} is not listed in the artifact's manifest: refusing to import it"
            )
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise ArtifactIntegrityError(
                f"{path} changed after the artifact was verified (its sha256 no longer "
                "matches the manifest): refusing to import it"
            )


_ROOTS: dict[str, _Code] = {}


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the checked source; never touches ``__pycache__``."""

    def __init__(self, fullname: str, path: str, *, code: _Code) -> None:
        super().__init__(fullname, path)
        self.code = code

    def get_data(self, path: str) -> bytes:
        data = read_regular(Path(path), path)
        self.code.check(os.path.abspath(path), data)
        return data

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)

    def set_data(self, path: str, data: Buffer, *, _mode: int = 0o666) -> None:
        """Never write bytecode into the artifact."""


class _ExtensionLoader(importlib.machinery.ExtensionFileLoader):
    """A compiled extension shipped as code: checked before it is loaded."""

    def __init__(self, fullname: str, path: str, *, code: _Code) -> None:
        super().__init__(fullname, path)
        self.code = code

    def create_module(self, spec: Any) -> Any:
        self.code.check(os.path.abspath(self.path), read_regular(Path(self.path), self.path))
        return super().create_module(spec)


def _root_of(path: str) -> str | None:
    path = os.path.abspath(path)
    for root in _ROOTS:
        if path == root or path.startswith(root + os.sep):
            return root
    return None


def _hook(path: str) -> importlib.machinery.FileFinder:
    root = _root_of(path)
    if root is None:
        raise ImportError("not an artifact's code_dir")
    code = _ROOTS[root]
    # FileFinder only calls each loader as loader(fullname, path): a partial binding the
    # artifact's hashes does, though typeshed asks for a class there
    return importlib.machinery.FileFinder(
        path,
        (partial(_ExtensionLoader, code=code), importlib.machinery.EXTENSION_SUFFIXES),  # type: ignore[arg-type]
        (partial(_SourceLoader, code=code), importlib.machinery.SOURCE_SUFFIXES),  # type: ignore[arg-type]
    )


def register(code_dir: Path, files: dict[str, str], *, strict: bool) -> str:
    """Claim ``code_dir`` for the hook (``files``: absolute path → sha256) and put it at
    the end of ``sys.path``. Returns its absolute path."""
    root = os.path.abspath(code_dir)
    _ROOTS[root] = _Code(files=files, strict=strict)
    if _hook not in sys.path_hooks:
        sys.path_hooks.insert(0, _hook)
    for cached in [p for p in sys.path_importer_cache if _root_of(p) == root]:
        del sys.path_importer_cache[cached]  # a finder made before the hook claimed it
    if root not in sys.path:
        sys.path.append(root)
    return root


def import_model_module(name: str, code_dir: Path, files: dict[str, str], *, strict: bool) -> Any:
    """Import ``name`` (dotted allowed) with its top-level module taken from ``code_dir``,
    replacing any module of that name imported from elsewhere. Raises
    ArtifactFormatError when it cannot be imported, ArtifactIntegrityError when a file
    fails its check."""
    if not code_dir.is_dir():
        raise ArtifactFormatError(f"python flavor code_dir {code_dir} does not exist")
    root = register(code_dir, files, strict=strict)
    top = name.split(".")[0]
    cached = sys.modules.get(top)
    if cached is not None and _root_of(str(getattr(cached, "__file__", "") or "")) != root:
        for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
            del sys.modules[key]
    try:
        if top not in sys.modules:
            _exec_top(top, root)
        return importlib.import_module(name)
    except ImportError as exc:
        raise ArtifactFormatError(f"cannot import module {name!r} from {code_dir}: {exc}") from None


def _exec_top(top: str, root: str) -> ModuleType:
    spec = importlib.machinery.PathFinder.find_spec(top, [root])
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {top!r} in the artifact's code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(top, None)
        raise
    return module
