"""Flavors: how one kind of model is written into an artifact.

Each flavor module has ``NAME``, ``matches(model) -> bool`` and
``save(model, root, *, options: SaveOptions) -> Saved`` (and optionally a looser
``accepts(model)`` used when the flavor is named); ``save`` writes under
``root/model/`` and returns what goes into the manifest. The runtime side of each
flavor is slml/runtime/flavors.py; the ``flavor_options`` both agree on are in
docs/CONTRACTS.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from slml.errors import ArtifactError, UnsupportedModel

# Detection order: an ONNX graph, then a plain class with predict (no fit), then
# anything with the estimator API.
ORDER = ("onnx", "python", "sklearn")

SUPPORTED = (
    "scikit-learn estimators and anything with the estimator API (fit + predict: "
    "XGBoost/LightGBM sklearn wrappers, pipelines); ONNX models (onnx.ModelProto, "
    "a .onnx path or its bytes); an instance of your own class with predict(inputs) "
    "(and optional load(data_dir)), flavor='python'"
)


@dataclass(frozen=True)
class SaveOptions:
    """What save_model passes every flavor (each uses what it needs)."""

    sample_input: Any = None
    code_paths: tuple[Path, ...] = ()
    artifacts: dict[str, Path] = field(default_factory=dict)
    output_index: int | None = None


@dataclass(frozen=True)
class Saved:
    """A flavor's contribution to the manifest. ``requirements`` are pinned."""

    flavor: str
    framework: dict[str, str]
    requirements: list[str]
    flavor_options: dict[str, Any]
    signature: dict[str, Any] | None


def flavor_module(name: str) -> ModuleType:
    if name not in ORDER:
        raise ArtifactError(f"unknown flavor {name!r}; expected one of {', '.join(ORDER)}")
    return importlib.import_module(f"slml.artifact.flavors.{name}")


def detect(model: Any, *, flavor: str | None = None) -> ModuleType:
    """The flavor module for ``model`` (``flavor`` forces one). Raises UnsupportedModel."""
    if flavor is not None:
        module = flavor_module(flavor)
        if not getattr(module, "accepts", module.matches)(model):
            raise UnsupportedModel(
                f"a {type(model).__name__} cannot be saved with flavor {flavor!r}: "
                f"{module.EXPECTS}",
                hint=f"supported: {SUPPORTED}",
            )
        return module
    for name in ORDER:
        module = flavor_module(name)
        if module.matches(model):
            return module
    raise UnsupportedModel(
        f"slml does not know how to save a {type(model).__module__}.{type(model).__name__}",
        hint=f"supported: {SUPPORTED}",
    )
