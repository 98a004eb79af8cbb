"""Pinned requirements, derived from the installed environment (importlib.metadata).

A requirement is pinned ``name==version`` when its distribution is installed here and
left as a bare name otherwise (the bundle resolver then picks a version). Names are
the distributions' own spelling (``scikit-learn``), deduplicated by their normalised
form (PEP 503).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from slml.errors import ArtifactError

_REQ = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement string. Raises ArtifactError."""
    match = _REQ.match(requirement) if isinstance(requirement, str) else None
    if not match:
        raise ArtifactError(
            f"requirement {requirement!r} is not a valid requirement string; expected "
            "something like 'scikit-learn==1.5.2' or 'numpy>=1.26'"
        )
    return normalise(match.group(1))


@functools.cache
def _module_map() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def distribution_of(module_name: str) -> str | None:
    """The distribution providing the top-level package of ``module_name`` (the first
    one when several do), or None for stdlib, ``__main__`` and loose local modules."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "__main__"):
        return None
    dists = _module_map().get(top)
    return dists[0] if dists else None


def is_importable_anywhere(module_name: str) -> bool:
    """Stdlib or provided by an installed distribution (so a bundle can import it)."""
    top = module_name.split(".")[0]
    return top in sys.stdlib_module_names or top == "builtins" or bool(_module_map().get(top))


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def pin(names: Iterable[str]) -> list[str]:
    """``name==installed`` for each distribution (bare name if not installed), in the
    given order, deduplicated."""
    out: dict[str, str] = {}
    for name in names:
        key = normalise(name)
        if key in out:
            continue
        try:
            dist = metadata.distribution(name)
            out[key] = f"{dist.metadata['Name']}=={dist.version}"
        except metadata.PackageNotFoundError:
            out[key] = name
    return list(out.values())


def merge(derived: Sequence[str], overrides: Sequence[str] | None) -> list[str]:
    """``derived`` with each override replacing the entry of the same distribution name
    and the other overrides appended. ``overrides`` must be a list of strings."""
    if overrides is None:
        return list(derived)
    if isinstance(overrides, str) or not all(isinstance(r, str) for r in overrides):
        raise ArtifactError(
            "requirements must be a list of requirement strings, e.g. ['scikit-learn==1.5.2']"
        )
    given = {requirement_name(r): r.strip() for r in overrides}
    out = [given.pop(requirement_name(r), r) for r in derived]
    return out + list(given.values())


def imported_distributions(code_dir: Path) -> list[str]:
    """Distributions imported (absolute imports) by the ``.py`` files under ``code_dir``,
    skipping stdlib and the modules shipped in ``code_dir`` itself."""
    shipped = {p.stem for p in code_dir.iterdir()}
    found: list[str] = []
    for source in sorted(code_dir.rglob("*.py")):
        for top in _imported_tops(source):
            dist = None if top in shipped else distribution_of(top)
            if dist and dist not in found:
                found.append(dist)
    return found


def _imported_tops(source: Path) -> list[str]:
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot parse shipped code {source}: {exc}") from None
    tops: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.append(node.module.split(".")[0])
    return tops
