"""What the OpenAPI document adds from a signature the request checks do not model as
features: rows of several named tensors (``kind: tensors``, the onnx flavor) and the
structure of each prediction (``signature.outputs``: tensors, records of fields)."""

from __future__ import annotations

from typing import Any

_TYPES = {"string": "string", "str": "string", "bool": "boolean"}


def refine(components: dict[str, Any], signature: dict[str, Any]) -> None:
    """Fill the row items of ``PredictRequest`` (named tensors) and the items of
    ``Predictions`` (the output schema) in place, where the signature says."""
    inputs, outputs = signature.get("inputs") or {}, signature.get("outputs") or {}
    if inputs.get("kind") == "tensors":
        rows = components["PredictRequest"]["oneOf"][0]["properties"]["instances"]
        rows["items"] = named_tensors_row(inputs.get("inputs") or [])
    item = prediction_schema(outputs)
    if item:
        components["Predictions"]["properties"]["predictions"]["items"] = item


def _scalar(dtype: str) -> dict[str, Any]:
    if dtype.startswith(("int", "uint")):
        return {"type": "integer"}
    if dtype.startswith("float"):
        return {"type": "number", "nullable": True}  # NaN and infinities answer null
    return {"type": _TYPES[dtype]} if dtype in _TYPES else {}


def tensor(dtype: str, dims: list[int]) -> dict[str, Any]:
    """Nested arrays of ``dims`` (-1: any length) around a scalar of ``dtype``."""
    if not dims:
        return _scalar(dtype)
    out: dict[str, Any] = {"type": "array", "items": tensor(dtype, dims[1:])}
    if dims[0] >= 0:
        out["minItems"] = out["maxItems"] = dims[0]
    return out


def named_tensors_row(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    names = [str(i["name"]) for i in inputs]
    return {
        "type": "object", "required": names, "additionalProperties": False,
        "properties": {str(i["name"]): tensor(str(i.get("dtype", "float32")),
                                               list(i.get("shape") or [-1])[1:])
                       for i in inputs},
    }  # fmt: skip


def prediction_schema(outputs: dict[str, Any]) -> dict[str, Any] | None:
    """One prediction's schema: a record (``records``), a list of records per row
    (``records_per_row``) or a tensor's item."""
    kind = outputs.get("kind")
    if kind in ("records", "records_per_row"):
        fields = outputs.get("fields") or []
        record = {"type": "object", "required": [str(f["name"]) for f in fields],
                  "properties": {str(f["name"]): _scalar(str(f.get("dtype", "")))
                                 for f in fields}}  # fmt: skip
        return record if kind == "records" else {"type": "array", "items": record}
    if kind == "tensor":
        return tensor(str(outputs.get("dtype", "float64")), list(outputs.get("shape") or [-1])[1:])
    return None
