"""The serve-time ``method:`` of slml.yaml: the model method a deployment serves
instead of the one saved in the artifact (``flavor_options.method``).

slml.yaml's ``method: predict_proba`` reaches every target as the environment variable
``SLML_METHOD`` (slml/config sets it in each provider's ``env``); the loader applies it
to the manifest before the flavor loads the model. Only flavors whose loaders call a
named method honour it; the flavor's loader then refuses a model without that method
(``the model (LinearRegression) has no method 'predict_proba'``).
"""

from __future__ import annotations

import os
from typing import Any

from slml.runtime.manifest import ArtifactFormatError

ENV = "SLML_METHOD"
#: Flavors whose runtime loader serves ``flavor_options.method``.
METHOD_FLAVORS = ("sklearn", "xgboost", "lightgbm", "catboost")
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def problem(manifest: dict[str, Any], method: str) -> str | None:
    """Why ``method`` cannot be served for this artifact, or None when it can."""
    flavor = manifest.get("flavor")
    if method not in METHODS:
        return f"{method!r} is not one of {', '.join(METHODS)}"
    if method != "predict" and flavor not in METHOD_FLAVORS:
        return (
            f"the artifact's {flavor} flavor serves predict only (methods are served for "
            f"{', '.join(METHOD_FLAVORS)} models)"
        )
    return None


def with_served_method(manifest: dict[str, Any], method: str | None = None) -> dict[str, Any]:
    """``manifest`` with ``method`` (default: ``$SLML_METHOD``) as its served method; the
    manifest itself when none is set. Raises ArtifactFormatError when the flavor cannot
    serve it."""
    method = method if method is not None else os.environ.get(ENV, "").strip() or None
    options = manifest.get("flavor_options") or {}
    if method is None or method == options.get("method", "predict"):
        return manifest
    found = problem(manifest, method)
    if found is not None:
        raise ArtifactFormatError(f"{ENV}={method} (slml.yaml method:): {found}")
    import copy  # only for an override: not on every cold start

    served = copy.deepcopy(manifest)
    served.setdefault("flavor_options", {})["method"] = method
    if method == "predict":
        served["flavor_options"].pop("classes", None)
    return served
