"""The sklearn flavor: any object with the estimator API (``fit`` + ``predict``),
joblib-serialised to ``model/model.joblib``, or with ``serialization="skops"`` written by
skops to ``model/model.skops`` (slml/artifact/flavors/skops_format.py): no pickle, and
loaded with only the types the manifest declares as trusted.

Requirements are the distributions providing the modules the pickle's GLOBAL opcodes
import (slml/artifact/pickled.py), plus joblib to load it: an XGBClassifier gives
framework ``xgboost`` and requires xgboost, scikit-learn, numpy, scipy and joblib. A
pickle that refers to code no installed package provides (``__main__``, a loose local
module) is refused: the runtime could not unpickle it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slml.artifact import pickled, schema
from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions
from slml.errors import ArtifactError

NAME = "sklearn"
EXPECTS = "the sklearn flavor needs an object with fit() and predict() (the estimator API)"
SUPPORTS = (
    "scikit-learn estimators and anything with the estimator API (fit + predict: "
    "pipelines, the XGBoost/LightGBM sklearn wrappers), pickled with joblib"
)
PRIORITY = 90
FILE = "model/model.joblib"
SERIALIZATIONS = ("joblib", "skops")
BASE_REQUIREMENTS = ("scikit-learn", "numpy", "scipy", "joblib")


def matches(model: Any) -> bool:
    return (
        not isinstance(model, type)
        and callable(getattr(model, "fit", None))
        and callable(getattr(model, "predict", None))
    )


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """joblib-dump ``model``; signature from the sample and one predict on it."""
    import joblib

    check_named_columns(model, options.sample_input)
    dists = pickled.requirements_of(model)
    framework = framework_of(model)
    base = BASE_REQUIREMENTS if "scikit-learn" in dists else ("numpy", "joblib")
    dists = [framework["name"], *base, *dists]
    if schema.is_dataframe(options.sample_input):
        dists.append("pandas")
    method = options.method or "predict"
    flavor_options: dict[str, Any] = {"file": FILE, "method": method}
    if method != "predict":
        flavor_options.update(output_options(model, method))
    (root / "model").mkdir(parents=True, exist_ok=True)
    if serialization(options) == "skops":
        from slml.artifact.flavors import skops_format

        flavor_options.update(skops_format.dump(model, root))
        dists = [*dists, *skops_format.REQUIREMENTS]
    else:
        joblib.dump(model, root / FILE)
    return Saved(
        flavor=NAME,
        framework=framework,
        requirements=reqs.pin(dists),
        flavor_options=flavor_options,
        signature=signature(model, options.sample_input, method),
    )


def serialization(options: SaveOptions) -> str:
    """The serialization asked for (joblib by default). Raises ArtifactError."""
    chosen = options.serialization or "joblib"
    if chosen not in SERIALIZATIONS:
        raise ArtifactError(
            f"serialization={chosen!r} is not one of {', '.join(SERIALIZATIONS)}",
            hint="skops stores the model without pickle and loads only trusted types: use it "
            "for models from people you do not fully trust",
        )
    return chosen


def output_options(model: Any, method: str) -> dict[str, Any]:
    """For a method other than predict: check the model has it; keep its class labels
    (one per output column) for the response. Raises ArtifactError."""
    if not callable(getattr(model, method, None)):
        raise ArtifactError(
            f"the {type(model).__name__} has no method {method!r}",
            hint="predict_proba and decision_function exist on classifiers (for SVC, "
            "predict_proba needs probability=True)",
        )
    classes = getattr(model, "classes_", None)
    if classes is None or getattr(classes, "ndim", 1) != 1:
        return {}
    return {"classes": [c.item() if hasattr(c, "item") else c for c in classes]}


def check_named_columns(model: Any, sample: Any) -> None:
    """A model that selects columns by name (a ColumnTransformer with names) cannot
    serve rows without those names: it needs a DataFrame sample. Raises ArtifactError."""
    if schema.is_dataframe(sample) or isinstance(sample, dict) or not needs_named_columns(model):
        return
    found = getattr(model, "feature_names_in_", None)
    names = [] if found is None else [str(n) for n in found]
    shown = f" ({', '.join(map(str, names[:8]))}{', ...' if len(names) > 8 else ''})"
    raise ArtifactError(
        f"the {type(model).__name__} selects its input columns by name{shown if names else ''}"
        f"; {'without a sample' if sample is None else 'with a sample of plain rows'} slml "
        "cannot know their names and types, and every request would be refused",
        hint="pass sample_input as a DataFrame of a few training rows (slml save: --sample "
        "rows.csv with a header, or .parquet, which keeps the dtypes)",
    )


def needs_named_columns(model: Any) -> bool:
    """Whether ``model`` or a step of it is a ColumnTransformer selecting by name."""
    params = model.get_params(deep=True) if callable(getattr(model, "get_params", None)) else {}
    for step in (model, *params.values()):
        if type(step).__name__ != "ColumnTransformer":
            continue
        for _name, _transformer, columns in getattr(step, "transformers", []):
            if isinstance(columns, str) or callable(columns):
                return True
            if isinstance(columns, list | tuple) and any(isinstance(c, str) for c in columns):
                return True
    return False


def framework_of(model: Any) -> dict[str, str]:
    """The distribution of the model class's top-level package, and its version."""
    return reqs.framework(reqs.distribution_of(type(model).__module__) or "scikit-learn")


def signature(model: Any, sample: Any, method: str = "predict") -> dict[str, Any] | None:
    """Inputs from the sample (named by ``feature_names_in_`` when it has none),
    outputs from ``model.predict(sample)``. None without a sample."""
    if sample is None:
        return None
    inputs = schema.infer_inputs(sample)
    names = getattr(model, "feature_names_in_", None)
    inputs = schema.with_names(inputs, list(names) if names is not None else None)
    output = predict_sample(model, sample, method)
    return {"inputs": inputs, "outputs": schema.infer_outputs(output)}


def predict_sample(model: Any, sample: Any, method: str = "predict") -> Any:
    """``model.<method>`` on the sample shaped as the runtime will shape requests."""
    try:
        return getattr(model, method)(schema.as_model_input(sample))
    except Exception as exc:
        raise ArtifactError(
            f"the model failed to predict on sample_input ({type(exc).__name__}: {exc})",
            hint="sample_input must be a few rows shaped like the training data",
        ) from None
