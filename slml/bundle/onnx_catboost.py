"""CatBoost models exported to ONNX for function targets.

CatBoost's own library unpacks to 264 MB even stripped (224 MB of it CUDA kernels that
its CPU wheel carries), over Lambda's 250 MB limit on its own. CatBoost writes its
models as ONNX itself (``save_model(format="onnx")``) for classifiers and regressors
without categorical features; onnxruntime then serves them in a zip of about 120 MB.

The exported graph takes float32 features and answers what the model's method does:
``predict`` the class labels (output ``label``) or the regression values (output
``predictions``, one column made flat), ``predict_proba`` the class probabilities in
``classes_`` order (output ``probabilities``, a map per row). Parity is checked on the
sample saved in the artifact: labels equal, values within a relative 1e-5 of the
model's (float32 features and leaf values), or the export is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slml.errors import ArtifactError

EXPORTABLE = ("CatBoostClassifier", "CatBoostRegressor")
RTOL = 1e-5


def no_converter(manifest: dict[str, Any]) -> str | None:
    """Why this catboost artifact cannot be exported, or None."""
    options = manifest.get("flavor_options") or {}
    model_class = options.get("model_class")
    if model_class not in EXPORTABLE:
        return (f"CatBoost exports only {' and '.join(EXPORTABLE)} to ONNX, not "
                f"{model_class}")  # fmt: skip
    if options.get("method", "predict") not in ("predict", "predict_proba"):
        return f"the ONNX export answers predict or predict_proba, not {options['method']}"
    if not options.get("sample"):
        return ("the artifact has no saved sample to check parity on (save it with a "
                "numeric sample_input)")
    return None


def export_model(artifact_dir: Path, manifest: dict[str, Any], target: Path
                 ) -> tuple[Path, dict[str, Any]]:
    """The catboost artifact as an onnx-flavor artifact at ``target / "artifact"`` and
    the parity figures. Raises ArtifactError naming what failed."""
    import numpy as np

    from slml.artifact import load_model, save_model
    from slml.runtime.flavors import _option_file
    from slml.runtime.native_flavors import open_catboost

    options = manifest["flavor_options"]
    try:
        model = open_catboost(_option_file(artifact_dir, manifest, "model/model.cbm"),
                              options["model_class"])  # fmt: skip
    except ImportError:
        raise ArtifactError("catboost is not installed where slml builds") from None
    if model.get_cat_feature_indices():
        raise ArtifactError("CatBoost cannot export a model with categorical features to "
                            "ONNX")  # fmt: skip
    target.mkdir(parents=True)
    graph = target / "model.onnx"
    try:
        model.save_model(str(graph), format="onnx")
    except Exception as exc:  # CatBoostError: e.g. "Unexpected label type" for booleans
        raise ArtifactError(f"CatBoost cannot export this model to ONNX: {exc}") from None
    sample = np.load(artifact_dir / options["sample"], allow_pickle=False)
    info = save_model(graph, target / "artifact", sample_input=sample,
                      name=manifest["name"], version=manifest["version"])  # fmt: skip
    _serve_as(info.path, options["method"], model)
    parity = _parity(load_model(artifact_dir), load_model(info.path), sample)
    return info.path, {**parity, "exporter": "catboost save_model(format='onnx')"}


def _serve_as(artifact: Path, method: str, model: Any) -> None:
    """Point the exported artifact's options at the output that answers ``method``."""
    from slml.bundle.onnx_export import edit_manifest  # (it imports this module)

    if method == "predict_proba":
        labels = [c.item() if hasattr(c, "item") else c for c in model.classes_]
        serve: dict[str, Any] = {"output_index": 1,
                                 "postprocess": {"op": "by_label", "labels": labels}}
    elif type(model).__name__ == "CatBoostRegressor":
        serve = {"output_index": 0, "postprocess": {"op": "flat"}}
    else:
        return
    edit_manifest(artifact, lambda m: m.setdefault("flavor_options", {}).update(serve))


def _parity(original: Any, exported: Any, sample: Any) -> dict[str, Any]:
    """The served original and the served export on the sample and on its first row."""
    import numpy as np

    diffs: list[float] = []
    for rows in (sample, sample[:1]):
        payload = {"instances": rows.tolist()}
        want, got = original.predict(payload), exported.predict(payload)
        if np.asarray(want).dtype.kind in "fc" or np.asarray(got).dtype.kind in "fc":
            want_f, got_f = np.asarray(want, dtype="float64"), np.asarray(got, dtype="float64")
            if want_f.shape != got_f.shape:
                raise ArtifactError(f"the ONNX export answers shape {list(got_f.shape)} where "
                                    f"the model answers {list(want_f.shape)}")  # fmt: skip
            scale = np.maximum(np.abs(want_f), 1.0)
            diffs.append(float(np.max(np.abs(got_f - want_f) / scale)) if want_f.size else 0.0)
        elif np.asarray(want).tolist() != np.asarray(got).tolist():
            raise ArtifactError("the ONNX export answers other labels than the model on the "
                                "sample")  # fmt: skip
        else:
            diffs.append(0.0)
    diff = max(diffs)
    if not diff <= RTOL:
        raise ArtifactError(f"the ONNX export differs from the model on the sample (max "
                            f"relative diff {diff:.3g}, allowed {RTOL})")  # fmt: skip
    return {"rows": len(sample), "check": "labels equal, values within a relative 1e-5 "
            "(sample and its first row)", "atol": RTOL, "max_abs_diff": diff}  # fmt: skip
