"""Signatures inferred from a sample input and from the model's output on it.

Shapes follow slml/runtime/manifest.py::

    {"kind": "tensor", "dtype": "float64", "shape": [-1, 4], "names": [...]?}
    {"kind": "columns", "columns": [{"name": "age", "dtype": "int64"}, ...]}

Accepted samples: a numpy array, a list of rows (lists), a list of records (dicts),
a dict of columns (name -> list) and a pandas DataFrame. numpy (and pandas for a
DataFrame) is imported only when a sample is given.
"""

from __future__ import annotations

from typing import Any

from slml.errors import ArtifactError

SAMPLE_KINDS = (
    "a numpy array, a list of rows, a list of records (dicts), "
    "a dict of columns (name -> list) or a pandas DataFrame"
)


def is_dataframe(value: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas."""
    return type(value).__module__.startswith("pandas") and hasattr(value, "columns")


def dtype_name(dtype: Any) -> str:
    """The manifest's dtype name for a numpy/pandas dtype (strings and objects → string)."""
    kind = getattr(dtype, "kind", "O")
    if kind in "USO":
        return "string"
    if kind == "b":
        return "bool"
    return str(dtype.name)


def infer_inputs(sample: Any) -> dict[str, Any]:
    """The input schema of ``sample``. Raises ArtifactError for an empty, ragged or
    unsupported sample, naming what is accepted."""
    if is_dataframe(sample):
        return _columns([(str(c), dtype_name(t)) for c, t in sample.dtypes.items()])
    if isinstance(sample, dict):
        return _columns([(str(k), _column_dtype(k, v)) for k, v in _dict_columns(sample)])
    if isinstance(sample, list | tuple) and sample and all(isinstance(r, dict) for r in sample):
        return infer_inputs(records_to_columns(sample))
    array = _as_array(sample)
    return {"kind": "tensor", "dtype": dtype_name(array.dtype), "shape": [-1, *array.shape[1:]]}


def infer_outputs(output: Any) -> dict[str, Any] | None:
    """The output schema of what the model returned, or None when it is not tabular
    (for example a list of dicts of mixed things)."""
    import numpy as np

    if is_dataframe(output):
        return _columns([(str(c), dtype_name(t)) for c, t in output.dtypes.items()])
    if isinstance(output, dict):
        try:
            return infer_inputs(output)
        except ArtifactError:
            return None
    try:
        array = np.asarray(output)
    except ValueError:
        return None
    if array.ndim == 0 or (array.dtype.kind == "O" and not _all_str(array)):
        return None
    return {"kind": "tensor", "dtype": dtype_name(array.dtype), "shape": [-1, *array.shape[1:]]}


def with_names(schema: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    """A tensor schema labelled with column names, when they fit its width."""
    if not names or schema.get("kind") != "tensor":
        return schema
    shape = schema.get("shape", [])
    if len(shape) == 2 and shape[1] == len(names):
        return {**schema, "names": [str(n) for n in names]}
    return schema


def sample_names(sample: Any) -> list[str] | None:
    """Column names carried by the sample (DataFrame, dict of columns, records)."""
    if is_dataframe(sample):
        return [str(c) for c in sample.columns]
    if isinstance(sample, dict):
        return [str(k) for k in sample]
    if isinstance(sample, list | tuple) and sample and isinstance(sample[0], dict):
        return [str(k) for k in sample[0]]
    return None


def as_rows(sample: Any) -> list[Any]:
    """The sample as the runtime hands it to a python-flavor model: rows in column order."""
    if is_dataframe(sample):
        frame_rows: list[Any] = sample.to_numpy().tolist()
        return frame_rows
    if isinstance(sample, dict):
        columns = [list(v) for _, v in _dict_columns(sample)]
        return [list(row) for row in zip(*columns, strict=True)]
    if isinstance(sample, list | tuple) and sample and isinstance(sample[0], dict):
        return as_rows(records_to_columns(sample))
    if hasattr(sample, "tolist"):
        array_rows: list[Any] = sample.tolist()
        return array_rows
    return list(sample)


def as_model_input(sample: Any) -> Any:
    """The sample as the runtime hands it to an sklearn/onnx model: a DataFrame stays a
    DataFrame, anything else becomes a 2-D numpy array in column order."""
    import numpy as np

    if is_dataframe(sample) or hasattr(sample, "dtype"):
        return sample
    return np.asarray(as_rows(sample))


def records_to_columns(
    records: list[dict[str, Any]] | tuple[dict[str, Any], ...],
) -> dict[str, list[Any]]:
    keys = list(records[0])
    if any(list(r) != keys for r in records):
        raise ArtifactError(
            "sample_input records must all have the same keys in the same order "
            f"(the first has {keys})"
        )
    return {k: [r[k] for r in records] for k in keys}


def _columns(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"kind": "columns", "columns": [{"name": n, "dtype": d} for n, d in pairs]}


def _dict_columns(sample: dict[Any, Any]) -> list[tuple[Any, Any]]:
    items = list(sample.items())
    lengths = {len(v) if hasattr(v, "__len__") and not isinstance(v, str) else -1 for _, v in items}
    if not items or -1 in lengths or len(lengths) != 1 or 0 in lengths:
        raise ArtifactError(
            "a dict sample_input must map each column name to a non-empty list of values, "
            "all of the same length"
        )
    return items


def _column_dtype(name: Any, values: Any) -> str:
    import numpy as np

    try:
        return dtype_name(np.asarray(values).dtype)
    except ValueError:
        raise ArtifactError(f"sample_input column {name!r} holds values of mixed shapes") from None


def _as_array(sample: Any) -> Any:
    import numpy as np

    if not isinstance(sample, list | tuple) and not hasattr(sample, "__array__"):
        raise ArtifactError(
            f"cannot infer a schema from a sample_input of type {type(sample).__name__}; "
            f"expected {SAMPLE_KINDS}"
        )
    try:
        array = np.asarray(sample)
    except ValueError:
        raise ArtifactError(
            "sample_input rows have different lengths; every row needs the same number of features"
        ) from None
    if array.ndim == 0 or array.shape[0] == 0:
        raise ArtifactError(f"sample_input is empty; give at least one row ({SAMPLE_KINDS})")
    if array.dtype.kind == "O" and not _all_str(array):
        raise ArtifactError(
            "sample_input mixes types numpy cannot put in one array; use a dict of columns "
            "or a DataFrame for mixed column types"
        )
    return array


def _all_str(array: Any) -> bool:
    return all(isinstance(v, str) for v in array.ravel().tolist())
