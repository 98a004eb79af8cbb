"""The lightgbm flavor: a ``lightgbm.Booster`` (detected) or a fitted LightGBM sklearn
wrapper (with ``flavor="lightgbm"``; pickled through the sklearn flavor otherwise),
written in LightGBM's own text format to ``model/model.txt`` and read back by
``lightgbm.Booster(model_file=...)``.

A Booster serves its ``predict`` (probabilities for a binary objective). A wrapped
classifier keeps its ``classes_`` in ``flavor_options.classes``, so ``predict`` returns
labels and ``method="predict_proba"`` one column per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions, native
from slml.errors import ArtifactError
from slml.runtime import native_flavors as runtime

NAME = "lightgbm"
PRIORITY = 20
EXPECTS = "the lightgbm flavor needs a lightgbm.Booster or a fitted LightGBM sklearn wrapper"
SUPPORTS = "LightGBM Boosters and sklearn wrappers in LightGBM's own format (model.txt)"
SUFFIXES = (".txt",)
FILE_HELP = (
    "LightGBM: model.txt, from booster.save_model('model.txt') (a text file starting 'tree')"
)
FILE = "model/model.txt"


def matches(model: Any) -> bool:
    return native.is_instance_of(model, "lightgbm", ("Booster",))


def accepts(model: Any) -> bool:
    return matches(model) or native.is_instance_of(model, "lightgbm", ("LGBMModel",))


def load_file(path: Path) -> Any:
    """The Booster in a LightGBM ``model.txt``. Raises ArtifactError for another file."""
    lightgbm = native.require("lightgbm", "lightgbm")
    try:
        first = path.open(encoding="utf-8").readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {path.name} as text ({exc})") from None
    if first != "tree":
        raise ArtifactError(
            f"{path.name} is not a LightGBM model (its first line is {first[:40]!r}, not 'tree')",
            hint="a LightGBM model.txt comes from booster.save_model('model.txt'); for another "
            "framework pass --flavor",
        )
    try:
        return lightgbm.Booster(model_file=str(path))
    except Exception as exc:
        raise ArtifactError(f"LightGBM cannot read {path.name}: {exc}") from None


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the Booster as model.txt; signature through the runtime's own call."""
    lightgbm = native.require("lightgbm", "lightgbm")
    booster = model if matches(model) else _booster_of(model)
    path = native.model_dir(root) / "model.txt"
    booster.save_model(str(path))
    classes = getattr(model, "classes_", None) if not matches(model) else None
    flavor_options: dict[str, Any] = {"file": FILE, "method": options.method or "predict"}
    if classes is not None:
        flavor_options["classes"] = [_plain(c) for c in classes]
    call = runtime.lightgbm_call(lightgbm.Booster(model_file=str(path)), flavor_options)
    names = native.real_names(booster.feature_name(), lambda i: f"Column_{i}")
    return Saved(
        flavor=NAME,
        framework=reqs.framework("lightgbm"),
        requirements=native.pins(["lightgbm", "numpy", "scipy"], options.sample_input),
        flavor_options=flavor_options,
        signature=native.signature(
            options.sample_input, names=names, width=booster.num_feature(), call=call
        ),
    )


def _booster_of(model: Any) -> Any:
    try:
        return model.booster_
    except Exception:
        raise ArtifactError(
            f"the {type(model).__name__} is not fitted; fit it before saving"
        ) from None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
