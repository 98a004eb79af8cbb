"""The catboost flavor: any CatBoost model (``CatBoost``, ``CatBoostClassifier``,
``CatBoostRegressor``, ``CatBoostRanker``; detected), written in CatBoost's own binary
format to ``model/model.cbm`` and read back with ``load_model`` into the same class.

The schema comes from the sample, labelled with ``feature_names_``. A classifier's
``predict`` returns labels; ``method="predict_proba"`` the class probabilities. A
``.cbm`` file holds no class: a classification loss reloads it as CatBoostClassifier,
a ranking loss as CatBoost (raw scores), anything else as CatBoostRegressor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions, native
from slml.errors import ArtifactError, a_or_an
from slml.runtime import native_flavors as runtime

NAME = "catboost"
PRIORITY = 20
EXPECTS = "the catboost flavor needs a fitted CatBoost model (CatBoostClassifier, ...)"
SUPPORTS = "CatBoost models in CatBoost's own format (.cbm)"
SUFFIXES = (".cbm",)
FILE_HELP = "CatBoost: model.cbm, from model.save_model('model.cbm') (binary, starts 'CBM1')"
FILE = "model/model.cbm"
_CLASSIFICATION = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll",
                   "MultiLogloss", "MultiCrossEntropy")  # fmt: skip
_RANKING = ("YetiRank", "PairLogit", "QueryRMSE", "QuerySoftMax", "QueryCrossEntropy",
            "LambdaMart", "StochasticFilter", "StochasticRank")  # fmt: skip


def matches(model: Any) -> bool:
    return native.is_instance_of(model, "catboost", ("CatBoost",))


def load_file(path: Path) -> Any:
    """The model in a CatBoost ``.cbm`` file. Raises ArtifactError for another file."""
    catboost = native.require("catboost", "catboost")
    try:
        magic = path.read_bytes()[:4]
    except OSError as exc:
        raise ArtifactError(f"cannot read {path.name} ({exc.strerror})") from None
    if magic != b"CBM1":
        raise ArtifactError(
            f"{path.name} is not a CatBoost model (a .cbm file starts with 'CBM1')",
            hint="a CatBoost model.cbm comes from model.save_model('model.cbm')",
        )
    model = catboost.CatBoost()
    try:
        model.load_model(str(path))
    except Exception as exc:
        raise ArtifactError(f"CatBoost cannot read {path.name}: {exc}") from None
    return runtime.open_catboost(path, _class_for(model))


def _class_for(model: Any) -> str:
    name = type(model).__name__
    if name in runtime.CATBOOST_CLASSES and name != "CatBoost":
        return name
    loss = str(model.get_all_params().get("loss_function", "")).split(":")[0]
    if loss in _CLASSIFICATION:
        return "CatBoostClassifier"
    return "CatBoost" if loss in _RANKING else "CatBoostRegressor"


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the model as .cbm; signature through the runtime's own call."""
    native.require("catboost", "catboost")
    if not model.is_fitted():
        raise ArtifactError(f"the {type(model).__name__} is not fitted; fit it before saving")
    path = native.model_dir(root) / "model.cbm"
    model.save_model(str(path), format="cbm")
    model_class = _class_for(model)
    method = options.method or "predict"
    reloaded = runtime.open_catboost(path, model_class)
    call = getattr(reloaded, method, None)
    if not callable(call):
        raise ArtifactError(f"{a_or_an(model_class)} has no method {method!r}")
    names = native.real_names(model.feature_names_, str)
    flavor_options = {"file": FILE, "model_class": model_class, "method": method}
    numeric = _numeric(options.sample_input)
    if numeric is not None:  # the ONNX export for function targets checks parity on it
        flavor_options["sample"] = native.save_sample(root, numeric)
    return Saved(
        flavor=NAME,
        framework=reqs.framework("catboost"),
        requirements=native.pins(["catboost", "numpy"], options.sample_input),
        flavor_options=flavor_options,
        signature=native.signature(
            options.sample_input, names=names, width=len(model.feature_names_ or []), call=call
        ),
    )


def _numeric(sample: Any) -> Any:
    """The sample as a float64 array, or None when it is not all numbers."""
    if sample is None:
        return None
    import numpy as np

    try:
        array = np.asarray(sample, dtype="float64")
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 and array.size else None
