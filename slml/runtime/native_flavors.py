"""Loaders for the models saved in their framework's own format, and for plug-ins.

- xgboost: ``model/model.json`` read by ``xgboost.Booster`` (``inplace_predict``), or,
  with ``flavor_options.model_class`` (``XGBClassifier``, ...), by that sklearn wrapper.
- lightgbm: ``model/model.txt`` read by ``lightgbm.Booster``; a saved sklearn wrapper's
  classifier keeps ``flavor_options.classes`` so ``predict`` returns labels.
- catboost: ``model/model.cbm`` read by ``flavor_options.model_class`` (``CatBoost``,
  ``CatBoostClassifier``, ``CatBoostRegressor``).
- statsmodels: ``model/model.pickle`` written by ``results.save`` and read by
  ``statsmodels.iolib.smpickle.load_pickle``; ``results.predict``.
- a plug-in flavor: ``flavor_options.loader`` = ``"module:function"``, imported (its
  package is among the requirements) and called as ``(artifact_dir, manifest)``.

Each framework is imported inside its loader only. Inputs are handed over as for the
sklearn flavor (slml/runtime/flavors.py ``to_array``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slml.runtime.flavors import Loader, Predictor, _option_file, _wants_frame, to_array
from slml.runtime.manifest import ArtifactFormatError
from slml.runtime.validation import Batch

XGBOOST_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier",
                   "XGBRFRegressor")  # fmt: skip
CATBOOST_CLASSES = ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")


def loader_for(manifest: dict[str, Any]) -> Loader:
    """The loader of a native or plug-in flavor. Raises ArtifactFormatError."""
    flavor = manifest["flavor"]
    native = {"xgboost": load_xgboost, "lightgbm": load_lightgbm, "catboost": load_catboost,
              "statsmodels": load_statsmodels}  # fmt: skip
    if flavor in native:
        return native[flavor]
    if flavor in ("torch", "keras"):  # slml/runtime/torch_flavor.py
        from slml.runtime import torch_flavor

        return torch_flavor.load_torch if flavor == "torch" else torch_flavor.load_keras
    target = (manifest.get("flavor_options") or {}).get("loader")
    module_name, _, function = str(target).partition(":")
    try:
        loader: Loader = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ArtifactFormatError(
            f"flavor {flavor!r}: cannot import its loader {target!r} ({exc}); the package "
            "that provides it must be among the artifact's requirements"
        ) from None
    if not callable(loader):
        raise ArtifactFormatError(f"flavor {flavor!r}: loader {target!r} is not callable")
    return loader


def _options(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest.get("flavor_options") or {})


def _predictor(call: Callable[[Any], Any], manifest: dict[str, Any]) -> Predictor:
    as_frame = _wants_frame(manifest)

    def predict(batch: Batch) -> Any:
        return call(to_array(batch, as_frame=as_frame))

    return predict


def _method(model: Any, name: str, artifact_dir: Path) -> Callable[[Any], Any]:
    method: Callable[[Any], Any] | None = getattr(model, name, None)
    if not callable(method):
        raise ArtifactFormatError(
            f"{artifact_dir}: the model ({type(model).__name__}) has no method {name!r} "
            "(flavor_options.method)"
        )
    return method


def _model_class(module: Any, name: str | None, allowed: tuple[str, ...], where: Path) -> Any:
    if name not in allowed:
        raise ArtifactFormatError(
            f"{where}: flavor_options.model_class {name!r} is not one of {', '.join(allowed)}"
        )
    return getattr(module, str(name))


def open_xgboost(path: Path, model_class: str | None) -> Any:
    """The Booster (or sklearn wrapper) saved at ``path``."""
    import xgboost

    if model_class is None:
        return xgboost.Booster(model_file=str(path))
    model = _model_class(xgboost, model_class, XGBOOST_CLASSES, path)()
    model.load_model(str(path))
    return model


def xgboost_call(model: Any, method: str, where: Path) -> Callable[[Any], Any]:
    """``predict`` of a Booster is ``inplace_predict`` (no DMatrix copy)."""
    if type(model).__name__ == "Booster":
        if method != "predict":
            raise ArtifactFormatError(f"{where}: an XGBoost Booster serves method 'predict' only")
        inplace: Callable[[Any], Any] = model.inplace_predict
        return inplace
    return _method(model, method, where)


def load_xgboost(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    options = _options(manifest)
    path = _option_file(artifact_dir, manifest, "model/model.json")
    model = open_xgboost(path, options.get("model_class"))
    return _predictor(xgboost_call(model, options.get("method", "predict"), path), manifest)


def lightgbm_call(booster: Any, options: dict[str, Any]) -> Callable[[Any], Any]:
    """``predict``: the Booster's output, or labels when the options keep ``classes``;
    ``predict_proba``: one column per class."""
    import numpy as np

    classes = options.get("classes")
    method = options.get("method", "predict")

    def proba(features: Any) -> Any:
        raw = np.asarray(booster.predict(features))
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def labels(features: Any) -> Any:
        return np.asarray(classes)[np.argmax(proba(features), axis=1)]

    if method == "predict_proba" and classes is not None:
        return proba
    if method == "predict":
        return labels if classes is not None else booster.predict
    raise ArtifactFormatError(
        f"a LightGBM model serves 'predict' (or 'predict_proba' for a classifier), not {method!r}"
    )


def load_lightgbm(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    import lightgbm

    path = _option_file(artifact_dir, manifest, "model/model.txt")
    booster = lightgbm.Booster(model_file=str(path))
    return _predictor(lightgbm_call(booster, _options(manifest)), manifest)


def open_catboost(path: Path, model_class: str | None) -> Any:
    import catboost

    model = _model_class(catboost, model_class or "CatBoost", CATBOOST_CLASSES, path)()
    model.load_model(str(path))
    return model


def load_catboost(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    options = _options(manifest)
    path = _option_file(artifact_dir, manifest, "model/model.cbm")
    model = open_catboost(path, options.get("model_class"))
    method = _method(model, options.get("method", "predict"), path)
    if options.get("method", "predict") == "predict" and type(model).__name__ == (
            "CatBoostClassifier"):
        return _predictor(_one_label_per_row(method), manifest)
    return _predictor(method, manifest)


def _one_label_per_row(predict: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """CatBoost answers a multiclass model's labels as a ``[N, 1]`` column (a binary
    one's as ``[N]``): one label per row either way."""

    def call(rows: Any) -> Any:
        out = predict(rows)
        shape: tuple[int, ...] = tuple(getattr(out, "shape", ()))
        return out.reshape(len(out)) if len(shape) == 2 and shape[1] == 1 else out

    return call


def open_statsmodels(path: Path) -> Any:
    from statsmodels.iolib.smpickle import load_pickle

    return load_pickle(str(path))


def load_statsmodels(artifact_dir: Path, manifest: dict[str, Any]) -> Predictor:
    path = _option_file(artifact_dir, manifest, "model/model.pickle")
    results = open_statsmodels(path)
    return _predictor(_method(results, _options(manifest).get("method", "predict"), path),
                      manifest)  # fmt: skip
