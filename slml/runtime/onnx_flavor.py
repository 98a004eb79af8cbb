"""The onnx flavor's runtime: an onnxruntime session, its inputs and its post-processing.

``flavor_options`` (docs/CONTRACTS.md):

- ``file``, ``output_index``: the graph and the output served;
- ``input_name``: the one input of a single-input graph (a 2-D numeric batch);
- ``inputs``: ``[{"name", "dtype", "shape"}, ...]`` for a graph with several named
  inputs; each request row is an object ``{name: tensor}`` (or ``inputs`` is an
  object of columns ``{name: [tensor per row]}``), checked per name here;
- ``tokenizer``: ``{"file", "max_length", "feeds"}``: the rows are strings, encoded
  with the ``tokenizers`` library (no transformers, no torch) into the graph's
  ``input_ids`` / ``attention_mask`` / ``token_type_ids``;
- ``postprocess``: ``{"op": "softmax" | "argmax" | "label_score", "labels": [...]}``:
  probabilities, the label of the largest logit, or ``{"label", "score"}`` per row
  (what a transformers text-classification pipeline answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slml.runtime.errors import invalid_input
from slml.runtime.manifest import ArtifactFormatError
from slml.runtime.validation import Batch, InputSpec, _check_tensor, _dims

if TYPE_CHECKING:  # no pathlib at run time: the artifact directory is a str or a Path
    from slml.runtime.manifest import StrPath

POSTPROCESS = ("softmax", "argmax", "label_score", "by_label", "flat")
TOKEN_FEEDS = ("input_ids", "attention_mask", "token_type_ids")
Feeder = Callable[[Batch], dict[str, Any]]


def load_onnx(artifact_dir: StrPath, manifest: dict[str, Any]) -> Callable[[Batch], Any]:
    """An onnxruntime session on CPU with the feeds and post-processing its options say.
    Raises ArtifactFormatError for options that do not fit the graph."""
    import onnxruntime as ort

    from slml.runtime.flavors import _option_bytes

    data = _option_bytes(artifact_dir, manifest, "model/model.onnx")
    settings = ort.SessionOptions()
    settings.log_severity_level = 3  # errors only: a warning per request would flood the
    # log (e.g. CatBoost's graphs declare [N] and answer [N, 1]: VerifyOutputSizes)
    session = ort.InferenceSession(data, sess_options=settings,
                                   providers=["CPUExecutionProvider"])
    options = dict(manifest.get("flavor_options") or {})
    names = [o.name for o in session.get_outputs()]
    index = int(options.get("output_index", 0))
    if not 0 <= index < len(names):
        raise ArtifactFormatError(
            f"{artifact_dir}: flavor_options.output_index {index} is out of range: the graph "
            f"has {len(names)} output(s) ({', '.join(names)})"
        )
    feeds = feeder(artifact_dir, session, options)
    post = postprocessor(options.get("postprocess"), artifact_dir)

    def predict(batch: Batch) -> Any:
        return post(session.run([names[index]], feeds(batch))[0])

    return predict


def feeder(artifact_dir: StrPath, session: Any, options: dict[str, Any]) -> Feeder:
    """How a validated batch becomes the graph's input feeds."""
    graph_inputs = {i.name: i for i in session.get_inputs()}
    if options.get("tokenizer"):
        return _token_feeder(artifact_dir, options["tokenizer"], list(graph_inputs))
    if options.get("inputs"):
        specs = named_specs(options["inputs"], artifact_dir)
        missing = sorted(set(graph_inputs) - set(specs))
        if missing:
            raise ArtifactFormatError(
                f"{artifact_dir}: flavor_options.inputs lacks graph input(s) {', '.join(missing)}"
            )
        return lambda batch: named_feeds(batch.rows, specs)
    return _single_feeder(session, options)


def _single_feeder(session: Any, options: dict[str, Any]) -> Feeder:
    import numpy as np

    from slml.runtime.flavors import ONNX_DTYPES, to_array

    graph_input = session.get_inputs()[0]
    name = options.get("input_name") or graph_input.name
    dtype = ONNX_DTYPES.get(graph_input.type, "float32")
    return lambda batch: {name: np.asarray(to_array(batch, as_frame=False), dtype=dtype)}


def named_specs(inputs: Any, where: StrPath) -> dict[str, InputSpec]:
    """``flavor_options.inputs`` as one tensor spec per name (the batch dimension off)."""
    if not isinstance(inputs, list) or not all(isinstance(i, dict) and "name" in i
                                               for i in inputs):  # fmt: skip
        raise ArtifactFormatError(f"{where}: flavor_options.inputs must be a list of "
                                  "{name, dtype, shape} objects")  # fmt: skip
    specs = {}
    for item in inputs:
        shape = tuple(int(d) for d in item.get("shape") or [-1])
        specs[str(item["name"])] = InputSpec("tensor", None, str(item.get("dtype", "float32")),
                                             shape[1:])  # fmt: skip
    return specs


def named_feeds(rows: list[Any], specs: dict[str, InputSpec]) -> dict[str, Any]:
    """Rows ``{name: tensor}`` checked against their specs and stacked per name.
    Raises RequestError (422) naming the row and input that do not fit."""
    import numpy as np

    names = list(specs)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise invalid_input(
                f"row {i} must be an object with the inputs {', '.join(names)}, "
                f"got {type(row).__name__}"
            )
        missing, unknown = [n for n in names if n not in row], [k for k in row if k not in specs]
        if missing or unknown:
            raise invalid_input(
                f"row {i}: " + "; ".join(
                    ([f"lacks {', '.join(missing)}"] if missing else [])
                    + ([f"has unknown {', '.join(map(str, unknown))}"] if unknown else [])
                ) + f"; expected inputs: {', '.join(names)}"
            )  # fmt: skip
        for name, spec in specs.items():
            columns[name].append(_check_tensor(row[name], spec.item_shape, spec,
                                               f"row {i}, input {name!r}"))  # fmt: skip
    feeds = {}
    for name, values in columns.items():
        shapes = {_dims(v) for v in values}
        if len(shapes) > 1:
            raise invalid_input(
                f"input {name!r} has rows of different shapes ({', '.join(map(str, shapes))}): "
                "pad every row of a batch to the same length"
            )
        feeds[name] = np.asarray(values, dtype=_numpy_dtype(specs[name].dtype))
    return feeds


def _numpy_dtype(dtype: str) -> str:
    return "object" if dtype in ("string", "str") else dtype


def _token_feeder(artifact_dir: StrPath, options: Any, graph_inputs: list[str]) -> Feeder:
    """Strings → token id tensors with the artifact's ``tokenizer.json``."""
    import numpy as np
    from tokenizers import Tokenizer

    from slml.runtime.flavors import _option_file

    if not isinstance(options, dict):
        raise ArtifactFormatError(f"{artifact_dir}: flavor_options.tokenizer must be an object")
    path = _option_file(artifact_dir, {"flavor_options": options}, "model/tokenizer.json")
    tokenizer = Tokenizer.from_file(str(path))
    max_length = int(options.get("max_length", 512))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=int(options.get("pad_id", 0)),
                             pad_token=str(options.get("pad_token", "[PAD]")))  # fmt: skip
    unknown = [n for n in graph_inputs if n not in TOKEN_FEEDS]
    if unknown:
        raise ArtifactFormatError(
            f"{artifact_dir}: the graph's input(s) {', '.join(unknown)} are not token tensors "
            f"({', '.join(TOKEN_FEEDS)}); a tokenizer cannot feed them"
        )

    def feeds(batch: Batch) -> dict[str, Any]:
        encoded = tokenizer.encode_batch([str(text) for text in batch.rows])
        arrays = {
            "input_ids": [e.ids for e in encoded],
            "attention_mask": [e.attention_mask for e in encoded],
            "token_type_ids": [e.type_ids for e in encoded],
        }
        return {name: np.asarray(arrays[name], dtype="int64") for name in graph_inputs}

    return feeds


def postprocessor(spec: Any, where: StrPath) -> Callable[[Any], Any]:
    """The post-processing step named by ``flavor_options.postprocess`` (identity when
    absent). Raises ArtifactFormatError for an unknown op."""
    if not spec:
        return lambda out: out
    op = spec.get("op") if isinstance(spec, dict) else None
    if op not in POSTPROCESS:
        raise ArtifactFormatError(
            f"{where}: flavor_options.postprocess.op {op!r} is not one of {', '.join(POSTPROCESS)}"
        )
    labels = spec.get("labels")
    return {"softmax": softmax, "argmax": lambda out: argmax(out, labels),
            "label_score": lambda out: label_score(out, labels),
            "by_label": lambda out: by_label(out, labels or []),
            "flat": flat}[op]  # fmt: skip


def by_label(maps: Any, labels: list[Any]) -> list[list[float]]:
    """A map per row (``label -> probability``, as tree converters answer) as rows of
    probabilities in ``labels`` order."""
    return [[float(row[label]) for label in labels] for row in maps]


def flat(out: Any) -> Any:
    """A ``[N, 1]`` output as ``[N]``."""
    import numpy as np

    return np.asarray(out).reshape(len(out))


def softmax(logits: Any) -> Any:
    """Row-wise softmax of a ``[N, classes]`` output (numerically stable)."""
    import numpy as np

    values = np.asarray(logits, dtype="float64")
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def argmax(logits: Any, labels: list[Any] | None) -> list[Any]:
    """The label (or index, without labels) of each row's largest value."""
    import numpy as np

    winners = np.asarray(logits).argmax(axis=-1).tolist()
    return [labels[i] if labels else i for i in winners]


def label_score(logits: Any, labels: list[Any] | None) -> list[dict[str, Any]]:
    """``{"label", "score"}`` per row: the winning label and its softmax probability."""
    probabilities = softmax(logits)
    winners = probabilities.argmax(axis=-1)
    return [{"label": labels[int(i)] if labels else int(i), "score": float(row[int(i)])}
            for i, row in zip(winners, probabilities, strict=True)]  # fmt: skip
