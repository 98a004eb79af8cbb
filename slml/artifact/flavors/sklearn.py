"""The sklearn flavor: any object with the estimator API (``fit`` + ``predict``),
joblib-serialised to ``model/model.joblib``.

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
FILE = "model/model.joblib"
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

    modules = referenced_modules(model)
    _refuse_unimportable(model, modules)
    framework = framework_of(model)
    dists = [d for d in map(reqs.distribution_of, sorted(modules)) if d]
    base = BASE_REQUIREMENTS if "scikit-learn" in dists else ("numpy", "joblib")
    dists = [framework["name"], *base, *dists]
    if schema.is_dataframe(options.sample_input):
        dists.append("pandas")
    (root / "model").mkdir(parents=True, exist_ok=True)
    joblib.dump(model, root / FILE)
    return Saved(
        flavor=NAME,
        framework=framework,
        requirements=reqs.pin(dists),
        flavor_options={"file": FILE, "method": "predict"},
        signature=signature(model, options.sample_input),
    )


def framework_of(model: Any) -> dict[str, str]:
    """The distribution of the model class's top-level package, and its version."""
    return reqs.framework(reqs.distribution_of(type(model).__module__) or "scikit-learn")


def signature(model: Any, sample: Any) -> dict[str, Any] | None:
    """Inputs from the sample (named by ``feature_names_in_`` when it has none),
    outputs from ``model.predict(sample)``. None without a sample."""
    if sample is None:
        return None
    inputs = schema.infer_inputs(sample)
    names = getattr(model, "feature_names_in_", None)
    inputs = schema.with_names(inputs, list(names) if names is not None else None)
    output = predict_sample(model, sample)
    return {"inputs": inputs, "outputs": schema.infer_outputs(output)}


def predict_sample(model: Any, sample: Any) -> Any:
    """``model.predict`` on the sample shaped as the runtime will shape requests."""
    try:
        return model.predict(schema.as_model_input(sample))
    except Exception as exc:
        raise ArtifactError(
            f"the model failed to predict on sample_input ({type(exc).__name__}: {exc})",
            hint="sample_input must be a few rows shaped like the training data",
        ) from None


def referenced_modules(model: Any) -> set[str]:
    """The modules the model's pickle imports when it is loaded."""
    return pickled.referenced_modules(model)


def _refuse_unimportable(model: Any, modules: set[str]) -> None:
    bad = sorted(m for m in modules if not reqs.is_importable_anywhere(m))
    if bad:
        raise ArtifactError(
            f"the {type(model).__name__} refers to code in {', '.join(bad)}, which no "
            "installed package provides; the serving runtime could not unpickle it",
            hint="move that code into an installed package, or save a class of your own "
            "with flavor='python' and code_paths=[...] so the code travels with the model",
        )
