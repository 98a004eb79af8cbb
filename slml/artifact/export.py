"""Export a scikit-learn model to ONNX with a parity check (``export="onnx"``).

The exported artifact needs onnxruntime and numpy only (no scikit-learn, no SciPy),
which is what shrinks serverless bundles. Input: one float32 tensor of the sample's
width. Classifiers are converted without ZipMap, so outputs are plain arrays; the
served output is the ``label`` output. Parity: the ONNX predictions on
``sample_input`` must equal sklearn's (classifiers) or be allclose (regressors);
otherwise the export is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slml.artifact import schema
from slml.artifact.flavors import onnx as onnx_flavor
from slml.artifact.flavors import sklearn as sklearn_flavor
from slml.errors import ArtifactError

RTOL, ATOL = 1e-4, 1e-5
_NO_EXPORT = "save without export= to keep the sklearn flavor (it serves with scikit-learn)"


@dataclass(frozen=True)
class Exported:
    """The ONNX bytes, the output to serve, and the manifest's ``exported_from``."""

    data: bytes
    output_index: int
    exported_from: dict[str, Any]


def to_onnx(model: Any, sample_input: Any) -> Exported:
    """Convert and check parity on ``sample_input``. Raises ArtifactError."""
    import numpy as np

    if sample_input is None:
        raise ArtifactError(
            "export='onnx' needs sample_input: it fixes the input width and is used to "
            "check the ONNX model predicts exactly what the original does"
        )
    try:
        features = np.asarray(schema.as_rows(sample_input), dtype=np.float64)
    except (TypeError, ValueError):
        raise ArtifactError(
            "export='onnx' converts models of numeric features only (one float tensor); "
            f"this sample has non-numeric columns{_non_numeric(sample_input)}",
            hint="encode strings and booleans as numbers before the model, or " + _NO_EXPORT,
        ) from None
    if features.ndim != 2:
        raise ArtifactError("export='onnx' needs a 2-D sample_input (rows of numeric features)")
    data = _convert(model, features.shape[1])
    classifier = _is_classifier(model)
    index = _label_index(data) if classifier else 0
    expected = np.asarray(sklearn_flavor.predict_sample(model, sample_input))
    got = np.asarray(onnx_flavor.run(data, sample_input)[index])
    if expected.ndim == 1 and got.shape == (expected.shape[0], 1):
        data = squeeze_output(data, index)  # serve what sklearn returns: one value per row
        got = np.asarray(onnx_flavor.run(data, sample_input)[index])
    parity = check_parity(expected, got, classifier)
    framework = sklearn_flavor.framework_of(model)
    return Exported(data, index, {"flavor": "sklearn", "framework": framework, "parity": parity})


def _non_numeric(sample: Any) -> str:
    if not schema.is_dataframe(sample):
        return ""
    names = [str(c) for c, t in sample.dtypes.items() if getattr(t, "kind", "O") not in "iuf"]
    return f" ({', '.join(names)})" if names else ""


def check_parity(expected: Any, got: Any, classifier: bool) -> dict[str, Any]:
    """Compare predictions; the parity record, or ArtifactError saying how they differ."""
    import numpy as np

    rows = int(expected.shape[0])
    if got.shape != expected.shape:
        raise ArtifactError(
            f"the ONNX export returns shape {list(got.shape)}, the model {list(expected.shape)}",
            hint=_NO_EXPORT,
        )
    if classifier:
        numeric = expected.dtype.kind in "biuf" and got.dtype.kind in "biuf"
        differ = expected != got if numeric else expected.astype(str) != got.astype(str)
        mismatches = int(np.sum(differ))
        if mismatches:
            raise ArtifactError(
                f"the ONNX export disagrees with the model on {mismatches} of {rows} sample "
                "rows (float32 rounding near a decision threshold, or an unsupported option)",
                hint=_NO_EXPORT,
            )
        return {"rows": rows, "check": "equal", "mismatches": 0}
    diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
    if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
        raise ArtifactError(
            f"the ONNX export's predictions differ from the model's by up to {diff:.3g} "
            f"(allowed rtol={RTOL}, atol={ATOL}) on the sample rows",
            hint=_NO_EXPORT,
        )
    return {"rows": rows, "check": "allclose", "rtol": RTOL, "atol": ATOL, "max_abs_diff": diff}


def squeeze_output(data: bytes, index: int) -> bytes:
    """The graph with output ``index`` reshaped from ``[N, 1]`` to ``[N]``."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load_from_string(data)
    outputs = list(proto.graph.output)
    old = outputs[index]
    shape, flat = f"{old.name}_slml_shape", f"{old.name}_slml_1d"
    proto.graph.initializer.append(helper.make_tensor(shape, TensorProto.INT64, [1], [-1]))
    proto.graph.node.append(helper.make_node("Reshape", [old.name, shape], [flat]))
    elem_type = old.type.tensor_type.elem_type
    outputs[index] = helper.make_tensor_value_info(flat, elem_type, [None])
    del proto.graph.output[:]
    proto.graph.output.extend(outputs)
    serialized: bytes = proto.SerializeToString()
    return serialized


def _convert(model: Any, width: int) -> bytes:
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        raise ArtifactError(
            "export='onnx' needs skl2onnx and onnxruntime", hint="pip install 'slml[onnx]'"
        ) from None
    options = {"zipmap": False} if _is_classifier(model) else None
    try:
        proto = convert_sklearn(
            model, initial_types=[("input", FloatTensorType([None, width]))], options=options
        )
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(
            f"skl2onnx cannot convert {type(model).__name__} to ONNX: {reason}",
            hint=_NO_EXPORT,
        ) from None
    serialized: bytes = proto.SerializeToString()
    return serialized


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(model))


def _label_index(data: bytes) -> int:
    import onnx

    names = [o.name for o in onnx.load_from_string(data).graph.output]
    return names.index("label") if "label" in names else 0
