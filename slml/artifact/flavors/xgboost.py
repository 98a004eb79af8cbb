"""The xgboost flavor: an ``xgboost.Booster`` (detected) or an XGBoost sklearn wrapper
(with ``flavor="xgboost"``; pickled through the sklearn flavor otherwise), written in
XGBoost's own JSON format to ``model/model.json`` and read back by XGBoost.

The schema comes from the sample, labelled with the Booster's feature names; without a
sample, from the Booster's feature count and names. A Booster serves
``inplace_predict`` (for ``binary:logistic`` that is the probability); a wrapper serves
its ``predict`` (labels for a classifier) or ``method="predict_proba"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions, native
from slml.errors import ArtifactError
from slml.runtime import native_flavors as runtime

NAME = "xgboost"
PRIORITY = 20
EXPECTS = "the xgboost flavor needs an xgboost.Booster or a fitted XGBoost sklearn wrapper"
SUPPORTS = "XGBoost Boosters and sklearn wrappers in XGBoost's own format (.json, .ubj)"
SUFFIXES = (".json", ".ubj")
FILE_HELP = (
    "XGBoost: model.json or model.ubj, from booster.save_model(...) or "
    "XGBClassifier().save_model(...)"
)
FILE = "model/model.json"
_WRAPPERS = runtime.XGBOOST_CLASSES
_BY_TYPE = {"classifier": "XGBClassifier", "regressor": "XGBRegressor", "ranker": "XGBRanker"}


def matches(model: Any) -> bool:
    return native.is_instance_of(model, "xgboost", ("Booster",))


def accepts(model: Any) -> bool:
    return matches(model) or native.is_instance_of(model, "xgboost", ("XGBModel",))


def load_file(path: Path) -> Any:
    """The Booster in an XGBoost ``.json``/``.ubj`` file; the sklearn wrapper when the
    file was saved from one. Raises ArtifactError for anything else."""
    xgboost = native.require("xgboost", "xgboost")
    if path.suffix.lower() == ".json":
        _check_json(path)
    try:
        booster = xgboost.Booster(model_file=str(path))
    except Exception as exc:
        raise ArtifactError(
            f"XGBoost cannot read {path.name}: {str(exc).splitlines()[0]}"
        ) from None
    wrapper = _wrapper_class(booster.attr("scikit_learn"))
    if wrapper is None:
        return booster
    model = getattr(xgboost, wrapper)()
    model.load_model(str(path))
    return model


def _check_json(path: Path) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{path.name} is not a JSON file ({exc})") from None
    if not isinstance(data, dict) or "learner" not in data:
        raise ArtifactError(
            f"{path.name} is JSON but not an XGBoost model (it has no 'learner')",
            hint="an XGBoost model.json comes from booster.save_model('model.json'); for "
            "another framework pass --flavor",
        )


def _wrapper_class(attribute: str | None) -> str | None:
    try:
        kind = json.loads(attribute or "{}").get("_estimator_type")
    except ValueError:
        return None
    return _BY_TYPE.get(str(kind))


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the model as XGBoost JSON; signature through the runtime's own call."""
    native.require("xgboost", "xgboost")
    booster = model if matches(model) else _booster_of(model)
    path = native.model_dir(root) / "model.json"
    model.save_model(str(path))
    model_class = None if matches(model) else type(model).__name__
    if model_class is not None and model_class not in _WRAPPERS:
        raise ArtifactError(
            f"{model_class} is not an XGBoost wrapper slml reloads ({', '.join(_WRAPPERS)})",
            hint="save booster = model.get_booster() instead",
        )
    method = options.method or "predict"
    reloaded = runtime.open_xgboost(path, model_class)
    call = runtime.xgboost_call(reloaded, method, path)
    names = native.real_names(booster.feature_names, lambda i: f"f{i}")
    dists = ["xgboost", "numpy", *(["scikit-learn"] if model_class else [])]
    return Saved(
        flavor=NAME,
        framework=reqs.framework("xgboost"),
        requirements=native.pins(dists, options.sample_input),
        flavor_options={"file": FILE, "model_class": model_class, "method": method},
        signature=native.signature(
            options.sample_input, names=names, width=booster.num_features(), call=call
        ),
    )


def _booster_of(model: Any) -> Any:
    try:
        return model.get_booster()
    except Exception:
        raise ArtifactError(
            f"the {type(model).__name__} is not fitted; fit it before saving"
        ) from None
