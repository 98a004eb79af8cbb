"""The onnx flavor: an ONNX graph (``onnx.ModelProto``, a ``.onnx`` path or its bytes)
written to ``model/model.onnx`` and served with onnxruntime.

The graph must have exactly one input (the runtime feeds one tensor). The input schema
comes from the graph (names from the sample when it has them); the output schema from
running the graph on the sample when there is one, else from the graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact import schema
from slml.artifact.flavors import Saved, SaveOptions
from slml.errors import ArtifactError
from slml.runtime.flavors import ONNX_DTYPES

NAME = "onnx"
EXPECTS = "the onnx flavor needs an onnx.ModelProto, the path of a .onnx file, or its bytes"
SUPPORTS = "ONNX models (onnx.ModelProto, a .onnx path or its bytes)"
PRIORITY = 10
SUFFIXES = (".onnx",)
FILE_HELP = "ONNX: a .onnx file (torch.onnx.export, skl2onnx, tf2onnx, ...)"
FILE = "model/model.onnx"
REQUIREMENTS = ("onnxruntime", "numpy")


def matches(model: Any) -> bool:
    if type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx"):
        return True
    if isinstance(model, bytes | bytearray):
        return True
    return isinstance(model, str | Path) and str(model).lower().endswith(".onnx")


def load_file(path: Path) -> Any:
    """An .onnx file is saved from its path (its bytes are copied as they are)."""
    return path


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the graph; check it runs on the sample. Raises ArtifactError."""
    onnx = _import_onnx()
    data = model_bytes(model)
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:
        raise ArtifactError(f"the ONNX model cannot be parsed: {exc}") from None
    graph_input = single_input(proto)
    index = options.output_index or 0
    if not 0 <= index < len(proto.graph.output):
        raise ArtifactError(f"output index {index} is out of range for this ONNX graph")
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / FILE).write_bytes(data)
    return Saved(
        flavor=NAME,
        framework={"name": "onnx", "version": str(onnx.__version__)},
        requirements=reqs.pin(REQUIREMENTS),
        flavor_options={"file": FILE, "input_name": graph_input.name, "output_index": index},
        signature=signature(proto, data, index, options.sample_input),
    )


def model_bytes(model: Any) -> bytes:
    """The serialised graph, from a ModelProto, bytes or a path."""
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    if isinstance(model, str | Path):
        try:
            return Path(model).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read the ONNX file {model}: {exc.strerror}") from None
    return model.SerializeToString()


def single_input(proto: Any) -> Any:
    """The graph's one real input (initializers are not inputs)."""
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ArtifactError(
            f"the ONNX graph has {len(inputs)} inputs ({names}); slml serves graphs with "
            "exactly one input tensor",
            hint="re-export the model with a single concatenated input",
        )
    return inputs[0]


def value_schema(value_info: Any) -> dict[str, Any] | None:
    """A tensor schema for an ONNX graph input/output; None for non-tensors (maps,
    sequences)."""
    import onnx.helper

    if not value_info.type.HasField("tensor_type"):
        return None
    tensor = value_info.type.tensor_type
    dtype = schema.dtype_name(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return {"kind": "tensor", "dtype": dtype, "shape": [-1, *dims[1:]] if dims else [-1]}


def signature(proto: Any, data: bytes, index: int, sample: Any) -> dict[str, Any]:
    inputs = value_schema(single_input(proto))
    outputs = value_schema(proto.graph.output[index])
    if sample is not None:
        schema.infer_inputs(sample)  # validates the sample's shape
        if inputs is not None:
            inputs = schema.with_names(inputs, schema.sample_names(sample))
        outputs = schema.infer_outputs(run(data, sample)[index])
    return {"inputs": inputs, "outputs": outputs}


def run(data: bytes, sample: Any) -> list[Any]:
    """Every output of the graph on the sample (cast to the input's dtype), as the
    runtime would compute it. Raises ArtifactError if onnxruntime refuses."""
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError:
        raise ArtifactError(
            "onnxruntime is not installed", hint="pip install 'slml[onnx]'"
        ) from None
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    dtype = ONNX_DTYPES.get(graph_input.type, "float32")
    try:
        array = np.asarray(schema.as_rows(sample), dtype=dtype)
        return session.run(None, {graph_input.name: array})
    except Exception as exc:
        raise ArtifactError(
            f"the ONNX model failed to run on sample_input ({type(exc).__name__}: {exc})",
            hint=f"the graph expects {graph_input.type} with shape {graph_input.shape}",
        ) from None


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ArtifactError(
            "saving an ONNX model needs the onnx package", hint="pip install 'slml[onnx]'"
        ) from None
    return onnx
