"""The onnx flavor: an ONNX graph (``onnx.ModelProto``, a ``.onnx`` path or its bytes)
written to ``model/model.onnx`` and served with onnxruntime.

A graph with one input takes rows of numbers (input schema from the graph, names from
the sample when it has them). A graph with several named inputs (``input_ids`` and
``attention_mask``, ...) takes a row as an object ``{name: tensor}`` or ``inputs`` as an
object of columns; its schema is ``{"kind": "tensors", "inputs": [{name, dtype,
shape}]}``. Wrap the graph in ``OnnxModel`` to add a post-processing step (softmax,
argmax with a label map, or ``label_score``) so a classifier answers labels, or a
``tokenizers`` tokenizer so the graph takes strings. The output schema comes from
running the graph (and its post-processing) on the sample when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
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
TOKENIZER_FILE = "model/tokenizer.json"
REQUIREMENTS = ("onnxruntime", "numpy")


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX graph with what the runtime does around it.

    ``postprocess``: ``"softmax"`` (probabilities), ``"argmax"`` (the label of the
    largest output, from ``labels``) or ``"label_score"`` (``{"label", "score"}`` per
    row). ``tokenizer``: the path of a ``tokenizers`` ``tokenizer.json``; the graph then
    takes strings (its inputs must be ``input_ids``/``attention_mask``/
    ``token_type_ids``), truncated to ``max_length`` tokens.
    """

    graph: Any
    postprocess: str | None = None
    labels: tuple[Any, ...] | list[Any] | None = None
    tokenizer: str | Path | None = None
    max_length: int = 512
    pad_token: str = "[PAD]"
    pad_id: int = 0


def matches(model: Any) -> bool:
    if isinstance(model, OnnxModel):
        return True
    if type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx"):
        return True
    if isinstance(model, bytes | bytearray):
        return True
    return isinstance(model, str | Path) and str(model).lower().endswith(".onnx")


def load_file(path: Path) -> Any:
    """An .onnx file is saved from its path (its bytes are copied as they are)."""
    return path


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Write the graph (and its tokenizer); check it runs on the sample. Raises
    ArtifactError."""
    onnx = _import_onnx()
    wrapped = model if isinstance(model, OnnxModel) else OnnxModel(model)
    data = model_bytes(wrapped.graph)
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:
        raise ArtifactError(f"the ONNX model cannot be parsed: {exc}") from None
    index = options.output_index or 0
    if not 0 <= index < len(proto.graph.output):
        raise ArtifactError(f"output index {index} is out of range for this ONNX graph")
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / FILE).write_bytes(data)
    flavor_options = {"file": FILE, **feed_options(wrapped, proto, root), "output_index": index}
    if wrapped.postprocess is not None:
        flavor_options["postprocess"] = postprocess_options(wrapped)
    return Saved(
        flavor=NAME,
        framework={"name": "onnx", "version": str(onnx.__version__)},
        requirements=reqs.pin(REQUIREMENTS + (("tokenizers",) if wrapped.tokenizer else ())),
        flavor_options=flavor_options,
        signature=signature(proto, root, flavor_options, options.sample_input),
    )


def graph_inputs(proto: Any) -> list[Any]:
    """The graph's real inputs (initializers are not inputs)."""
    initializers = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in initializers]


def feed_options(model: OnnxModel, proto: Any, root: Path) -> dict[str, Any]:
    """How the runtime feeds the graph: ``input_name`` (one input), ``inputs`` (several
    named ones) or ``tokenizer`` (strings; the tokenizer is copied into the artifact)."""
    inputs = graph_inputs(proto)
    if model.tokenizer is not None:
        return {"tokenizer": copy_tokenizer(model, inputs, root)}
    if len(inputs) == 1:
        return {"input_name": inputs[0].name}
    if not inputs:
        raise ArtifactError("the ONNX graph has no inputs")
    named = []
    for graph_input in inputs:
        tensor = value_schema(graph_input)
        if tensor is None:
            raise ArtifactError(f"the ONNX graph input {graph_input.name!r} is not a tensor")
        named.append({"name": graph_input.name, **tensor})
    return {"inputs": [{k: v for k, v in i.items() if k != "kind"} for i in named]}


def copy_tokenizer(model: OnnxModel, inputs: list[Any], root: Path) -> dict[str, Any]:
    from slml.runtime.onnx_flavor import TOKEN_FEEDS

    others = [i.name for i in inputs if i.name not in TOKEN_FEEDS]
    if others:
        raise ArtifactError(
            f"a tokenizer feeds {', '.join(TOKEN_FEEDS)}; this graph also takes "
            f"{', '.join(others)}",
            hint="export the model with token inputs only, or save it without a tokenizer",
        )
    path = Path(str(model.tokenizer))
    if not path.is_file():
        raise ArtifactError(
            f"tokenizer {path} is not a file",
            hint="pass the tokenizer.json written by tokenizers (or a fast tokenizer's "
            "save_pretrained)",
        )
    (root / TOKENIZER_FILE).write_bytes(path.read_bytes())
    return {"file": TOKENIZER_FILE, "max_length": int(model.max_length),
            "pad_token": model.pad_token, "pad_id": int(model.pad_id)}  # fmt: skip


def postprocess_options(model: OnnxModel) -> dict[str, Any]:
    from slml.runtime.onnx_flavor import POSTPROCESS

    if model.postprocess not in POSTPROCESS:
        raise ArtifactError(
            f"postprocess={model.postprocess!r} is not one of {', '.join(POSTPROCESS)}"
        )
    if model.postprocess == "argmax" and not model.labels:
        raise ArtifactError("postprocess='argmax' needs labels (the class names, in order)")
    out: dict[str, Any] = {"op": model.postprocess}
    if model.labels:
        out["labels"] = list(model.labels)
    return out


def model_bytes(model: Any) -> bytes:
    """The serialised graph, from a ModelProto, bytes or a path."""
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    if isinstance(model, str | Path):
        try:
            return Path(model).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read the ONNX file {model}: {exc.strerror}") from None
    data: bytes = model.SerializeToString()
    return data


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


def signature(
    proto: Any, root: Path, options: dict[str, Any], sample: Any
) -> dict[str, Any]:
    """Inputs from the graph (strings with a tokenizer), outputs from a run on the sample."""
    index = int(options.get("output_index", 0))
    if "tokenizer" in options:
        inputs: dict[str, Any] | None = {"kind": "tensor", "dtype": "string", "shape": [-1]}
    elif "inputs" in options:
        inputs = {"kind": "tensors", "inputs": options["inputs"]}
    else:
        inputs = value_schema(graph_inputs(proto)[0])
    outputs = value_schema(proto.graph.output[index])
    if "postprocess" in options:
        outputs = POSTPROCESS_OUTPUTS[options["postprocess"]["op"]]
    if sample is not None:
        if inputs is not None and inputs["kind"] == "tensor" and "tokenizer" not in options:
            schema.infer_inputs(sample)  # validates the sample's shape
            inputs = schema.with_names(inputs, schema.sample_names(sample))
        got = run_artifact(root, options, sample, signature={"inputs": inputs})
        if "postprocess" not in options:
            outputs = schema.infer_outputs(got)
    return {"inputs": inputs, "outputs": outputs}


POSTPROCESS_OUTPUTS: dict[str, dict[str, Any]] = {
    "softmax": {"kind": "tensor", "dtype": "float64", "shape": [-1, -1]},
    "argmax": {"kind": "tensor", "dtype": "string", "shape": [-1]},
    "label_score": {"kind": "records", "fields": [{"name": "label", "dtype": "string"},
                                                  {"name": "score", "dtype": "float64"}]},
}  # fmt: skip


def sample_rows(sample: Any) -> list[Any]:
    """The sample as request rows: records stay records, columns become records."""
    if isinstance(sample, dict):
        import numpy as np

        columns = {str(k): np.asarray(v).tolist() for k, v in sample.items()}
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                         strict=True)]  # fmt: skip
    if schema.is_dataframe(sample):
        return schema.as_rows(sample)
    return sample.tolist() if hasattr(sample, "tolist") else list(sample)


def run_artifact(root: Path, options: dict[str, Any], sample: Any,
                 signature: dict[str, Any]) -> Any:  # fmt: skip
    """What the runtime answers for the sample: the graph in ``root`` loaded by the
    onnx runtime loader, fed the sample as a request. Raises ArtifactError."""
    from slml.runtime.errors import RequestError
    from slml.runtime.onnx_flavor import load_onnx
    from slml.runtime.validation import parse_payload

    manifest = {"flavor": NAME, "flavor_options": options, "files": {}, "signature": signature}
    try:
        predict = load_onnx(root, manifest)
        from slml.runtime.validation import input_spec

        batch = parse_payload({"instances": sample_rows(sample)},
                              input_spec(signature["inputs"]), max_rows=10**9)  # fmt: skip
        return predict(batch)
    except RequestError as exc:
        raise ArtifactError(f"sample_input does not fit the ONNX graph: {exc.message}") from None
    except Exception as exc:
        raise ArtifactError(
            f"the ONNX model failed to run on sample_input ({type(exc).__name__}: {exc})"
        ) from None


def run(data: bytes, sample: Any) -> list[Any]:
    """Every output of a single-input graph on the sample (cast to the input's dtype),
    as the runtime would compute it. Raises ArtifactError if onnxruntime refuses."""
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
        outputs: list[Any] = session.run(None, {graph_input.name: array})
        return outputs
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
