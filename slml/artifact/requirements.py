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
from collections.abc import Iterable, Mapping, Sequence
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
    return {top: list(dict.fromkeys(d)) for top, d in metadata.packages_distributions().items()}


# A framework that publishes the same module under a CPU-only name: the manifest records
# the canonical distribution (a bundle for a CPU target swaps it back, slml/bundle).
CANONICAL = {"xgboost-cpu": "xgboost"}


def distribution_of(module_name: str) -> str | None:
    """The distribution that provides ``module_name``, or None for stdlib, ``__main__``
    and loose local modules.

    When several distributions share the top-level package (namespace packages such as
    ``google``, ``azure``, ``opentelemetry``; ``mlflow`` and ``mlflow-tracing``), the one
    whose files hold the deepest part of the module's path wins; among equals, the one
    named like the package. CPU-only variants are reported by their canonical name."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "__main__"):
        return None
    dists = _module_map().get(top)
    if not dists:
        return None
    found = dists[0] if len(dists) == 1 else _owner(module_name, tuple(dists))
    return CANONICAL.get(normalise(found), found)


@functools.cache
def _owner(module_name: str, dists: tuple[str, ...]) -> str:
    parts = module_name.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        owners = [d for d in dists if _owns(d, prefix)]
        if owners:
            return _preferred(owners, parts[0])
    return _preferred(list(dists), parts[0])


def _preferred(owners: list[str], top: str) -> str:
    named = [d for d in owners if normalise(d) == normalise(top)]
    return (named or sorted(owners, key=normalise))[0]


def _owns(dist: str, prefix: str) -> bool:
    """Whether ``dist`` installs the module or package at ``prefix`` (``a/b``)."""
    return any(
        path == f"{prefix}.py" or path.startswith(f"{prefix}/") or _is_extension(path, prefix)
        for path in _files(dist)
    )


def _is_extension(path: str, prefix: str) -> bool:
    return path.startswith(f"{prefix}.") and path.endswith((".so", ".pyd"))


@functools.cache
def _files(dist: str) -> tuple[str, ...]:
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return ()
    return tuple(str(f).replace("\\", "/") for f in files)


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
    given order, deduplicated. A local version label (``2.3.0+cpu``) is dropped: no
    package index serves it. A canonical name whose CPU-only variant is what is
    installed (``xgboost`` from ``xgboost-cpu``) is pinned to the variant's version."""
    out: dict[str, str] = {}
    for name in names:
        key = normalise(name)
        if key not in out:
            out[key] = _pinned(name)
    return list(out.values())


def _pinned(name: str) -> str:
    variants = [v for v, canonical in CANONICAL.items() if canonical == normalise(name)]
    for candidate in (name, *variants):
        try:
            dist = metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            continue
        spelled = name if candidate != name else str(dist.metadata["Name"])
        return f"{spelled}=={public_version(dist.version)}"
    return name


def framework(dist: str) -> dict[str, str]:
    """The manifest's ``framework`` for an installed distribution: its name (canonical
    for a CPU-only variant) and public version."""
    name, _, version = _pinned(dist).partition("==")
    return {"name": name, "version": version}


def public_version(version: str) -> str:
    """``version`` without its local label (``+cpu``, ``+cu121``)."""
    return version.split("+", 1)[0]


def merge(
    derived: Sequence[str], overrides: Sequence[str] | None, drop: Sequence[str] | None = None
) -> list[str]:
    """``derived`` with each override replacing the entry of the same distribution name,
    the other overrides appended, and the ``drop`` names removed. Raises ArtifactError
    for a malformed list or a dropped name that is not derived."""
    return adjust(derived, add=_strings(overrides, "requirements"), remove=_strings(drop, "drop"))


def adjust(
    derived: Sequence[str],
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    replace: Mapping[str, str] | None = None,
) -> list[str]:
    """The requirements after ``remove`` (names), ``replace`` (name → another
    requirement, in place) and ``add`` (replaces the pin of the same name, else
    appended). Raises ArtifactError naming a removed or replaced name not in
    ``derived``."""
    names = [requirement_name(r) for r in derived]
    replace = {requirement_name(k): v.strip() for k, v in (replace or {}).items()}
    removed = {requirement_name(r) for r in remove}
    unknown = sorted((removed | set(replace)) - set(names))
    if unknown:
        raise ArtifactError(
            f"cannot remove or replace {', '.join(unknown)}: not among the requirements "
            f"({', '.join(names) or 'none'})"
        )
    out = [replace.get(n, r) for n, r in zip(names, derived, strict=True) if n not in removed]
    given = {requirement_name(r): r.strip() for r in add}
    out = [given.pop(requirement_name(r), r) for r in out]
    return out + list(given.values())


def _strings(values: Sequence[str] | None, what: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str) or not all(isinstance(r, str) for r in values):
        raise ArtifactError(
            f"{what} must be a list of requirement strings, e.g. ['scikit-learn==1.5.2']"
        )
    return list(values)


def imported_distributions(code_dir: Path) -> list[str]:
    """Distributions imported (absolute imports) by the ``.py`` files under ``code_dir``,
    skipping stdlib and the modules shipped in ``code_dir`` itself."""
    shipped = {p.stem for p in code_dir.iterdir()}
    found: list[str] = []
    for source in sorted(code_dir.rglob("*.py")):
        for module in _imported_modules(source):
            dist = None if module.split(".")[0] in shipped else distribution_of(module)
            if dist and dist not in found:
                found.append(dist)
    return found


def _imported_modules(source: Path) -> list[str]:
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot parse shipped code {source}: {exc}") from None
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules
