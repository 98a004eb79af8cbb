"""Flavors: how one kind of model is written into an artifact.

Flavors are plug-ins: every flavor, built-in or third-party, registers a module through
the ``slml.flavors`` entry-point group (pyproject.toml), so adding a framework adds a
module and an entry point, never an edit here. A flavor module has

- ``NAME`` (the entry point's name) and ``EXPECTS`` (what it saves, for errors);
  optionally ``SUPPORTS`` (one line for the list of what slml saves; else EXPECTS);
- ``matches(model) -> bool`` (detection) and optionally a looser ``accepts(model)``
  used when the flavor is named;
- ``save(model, root, *, options: SaveOptions) -> Saved``: writes under
  ``root/model/`` and returns what goes into the manifest;
- optionally ``PRIORITY`` (detection order, lower first, default 50), ``SUFFIXES``
  (model-file suffixes it reads), ``load_file(path)`` (the model in such a file) and
  ``FILE_HELP`` (what its native file looks like);
- for a flavor the serving runtime does not know, ``LOADER = "module:function"``,
  written to ``flavor_options.loader``: the runtime imports it (its package must be
  among the requirements) and calls it as ``(artifact_dir, manifest) -> Predictor``.

The runtime side of each built-in flavor is slml/runtime/flavors.py; the
``flavor_options`` both agree on are in docs/CONTRACTS.md. Each flavor module is
checked when it is loaded; a wrong shape is an ArtifactError naming its package.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from slml.errors import ArtifactError, UnsupportedModel, a_or_an

GROUP = "slml.flavors"
_REQUIRED: dict[str, Any] = {  # attribute -> what isinstance checks it against
    "NAME": str, "EXPECTS": str, "matches": Callable, "save": Callable,
}  # fmt: skip


@dataclass(frozen=True)
class SaveOptions:
    """What save_model passes every flavor (each uses what it needs)."""

    sample_input: Any = None
    code_paths: tuple[Path, ...] = ()
    artifacts: dict[str, Path] = field(default_factory=dict)
    output_index: int | None = None
    method: str | None = None  # the model method to serve (predict, predict_proba, ...)
    serialization: str | None = None  # sklearn: "joblib" (default) or "skops"


@dataclass(frozen=True)
class Saved:
    """A flavor's contribution to the manifest. ``requirements`` are pinned."""

    flavor: str
    framework: dict[str, str]
    requirements: list[str]
    flavor_options: dict[str, Any]
    signature: dict[str, Any] | None


@functools.cache
def registered() -> dict[str, ModuleType]:
    """Every flavor registered in ``slml.flavors``, in detection order. Raises
    ArtifactError for a plug-in that fails to import or has the wrong shape."""
    found: dict[str, tuple[ModuleType, str]] = {}
    for ep in entry_points(group=GROUP):
        module, package = _checked(ep), _package(ep)
        if ep.name in found and found[ep.name][1] != package:
            raise ArtifactError(
                f"flavor {ep.name!r} is registered twice, by {found[ep.name][1]} and {package}",
                hint="uninstall one of the two packages",
            )
        found[ep.name] = (module, package)
    if not found:
        raise ArtifactError(
            f"no flavors are registered in the {GROUP!r} entry-point group",
            hint="reinstall slml (pip install -e . in a checkout) so its entry points exist",
        )
    order = sorted(found, key=lambda n: (getattr(found[n][0], "PRIORITY", 50), n))
    return {name: found[name][0] for name in order}


def _package(ep: EntryPoint) -> str:
    return str(ep.dist.name) if ep.dist is not None else "an unknown package"


def _checked(ep: EntryPoint) -> ModuleType:
    where = f"flavor plug-in {ep.name!r} of package {_package(ep)} ({ep.value})"
    try:
        module: ModuleType = ep.load()
    except Exception as exc:
        raise ArtifactError(
            f"{where} cannot be imported ({type(exc).__name__}: {exc})",
            hint=f"reinstall or uninstall {_package(ep)}",
        ) from None
    problems = [
        f"{attr} is missing or not a {getattr(kind, '__name__', kind)}"
        for attr, kind in _REQUIRED.items()
        if not isinstance(getattr(module, attr, None), kind)
    ]
    if not problems and ep.name != module.NAME:
        problems.append(f"NAME is {module.NAME!r}, not the entry point's name {ep.name!r}")
    if problems:
        raise ArtifactError(
            f"{where} is not a valid flavor: {'; '.join(problems)}",
            hint=f"a flavor module needs {', '.join(_REQUIRED)}; report this to {_package(ep)}",
        )
    return module


def supported() -> str:
    """What slml can save, one clause per flavor (for error hints)."""
    return "; ".join(
        str(getattr(module, "SUPPORTS", module.EXPECTS)) for module in registered().values()
    )


def flavor_module(name: str) -> ModuleType:
    flavors = registered()
    if name not in flavors:
        raise ArtifactError(f"unknown flavor {name!r}; expected one of {', '.join(flavors)}")
    return flavors[name]


def detect(model: Any, *, flavor: str | None = None) -> ModuleType:
    """The flavor module for ``model`` (``flavor`` forces one). Raises UnsupportedModel."""
    module: ModuleType | None
    if flavor is not None:
        module = flavor_module(flavor)
        if not getattr(module, "accepts", module.matches)(model):
            raise UnsupportedModel(
                f"{a_or_an(type(model).__name__)} cannot be saved with flavor {flavor!r}: "
                f"{module.EXPECTS}",
                hint=f"supported: {supported()}",
            )
    else:
        module = next((m for m in registered().values() if m.matches(model)), None)
        if module is None:
            raise UnsupportedModel(
                "slml does not know how to save "
                + a_or_an(f"{type(model).__module__}.{type(model).__name__}"),
                hint=f"supported: {supported()}",
            )
    if module.NAME == "python":
        from slml.artifact.flavors.third_party import refuse_installed_class

        refuse_installed_class(model)
    return module
