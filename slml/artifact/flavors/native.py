"""What the native-format flavors (xgboost, lightgbm, catboost, statsmodels) share: the
signature from the sample or the model's own feature names, one predict on the sample
through the runtime's own call, and the type checks that need no framework import."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from slml.artifact import schema
from slml.errors import ArtifactError


def is_instance_of(model: Any, module_prefix: str, names: Sequence[str]) -> bool:
    """Whether ``model``'s class, or a base of it, is one of ``names`` from a module under
    ``module_prefix`` (checked without importing the framework)."""
    if isinstance(model, type):
        return False
    return any(
        cls.__name__ in names and str(cls.__module__).startswith(module_prefix)
        for cls in type(model).__mro__
    )


def real_names(names: Sequence[Any] | None, default: Callable[[int], str]) -> list[str] | None:
    """Feature names worth keeping: None when absent or the framework's placeholders
    (``Column_0``, ``f0``, ``0``...)."""
    if not names:
        return None
    listed = [str(n) for n in names]
    if all(name == default(i) for i, name in enumerate(listed)):
        return None
    return listed


def signature(
    sample: Any,
    *,
    names: list[str] | None,
    width: int | None,
    call: Callable[[Any], Any],
) -> dict[str, Any] | None:
    """Inputs from the sample (labelled with ``names``) and outputs from ``call`` on it; with
    no sample, a float tensor of the model's ``width`` (named when it has names)."""
    if sample is None:
        if not width:
            return None
        inputs = {"kind": "tensor", "dtype": "float64", "shape": [-1, width]}
        return {"inputs": schema.with_names(inputs, names), "outputs": None}
    inputs = schema.with_names(schema.infer_inputs(sample), names)
    try:
        output = call(schema.as_model_input(sample))
    except Exception as exc:
        raise ArtifactError(
            f"the model failed to predict on sample_input ({type(exc).__name__}: {exc})",
            hint="sample_input must be a few rows shaped like the training data",
        ) from None
    return {"inputs": inputs, "outputs": schema.infer_outputs(output)}


def pins(dists: list[str], sample: Any) -> list[str]:
    """Pinned ``dists``, plus pandas when the sample is a DataFrame (the runtime then
    hands the model a DataFrame with the sample's columns)."""
    from slml.artifact import requirements as reqs

    return reqs.pin([*dists, *(["pandas"] if schema.is_dataframe(sample) else [])])


def model_dir(root: Path) -> Path:
    (root / "model").mkdir(parents=True, exist_ok=True)
    return root / "model"


def require(module: str, framework: str) -> Any:
    """Import ``module`` or raise ArtifactError naming what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArtifactError(
            f"saving a {framework} model needs {framework} installed in this environment",
            hint=f"pip install {framework}",
        ) from None


SAMPLE_FILE = "model/sample.npy"


def save_sample(root: Path, array: Any) -> str:
    """The sample as ``model/sample.npy`` (numbers only, no pickle); its relative path.
    Build steps that check a conversion (the ONNX export for function targets) read it."""
    import numpy as np

    np.save(root / SAMPLE_FILE, np.asarray(array), allow_pickle=False)
    return SAMPLE_FILE
