"""The OpenAPI 3.0.3 document for a loaded model, built from its input signature.

``build_openapi(manifest, spec)`` describes every route the app serves, the request
body (``instances`` rows or ``inputs`` columns, typed per feature when the signature
says so), the prediction response and the error body with every status it can take.
"""

from __future__ import annotations

from typing import Any

from slml.runtime.openapi_signature import refine
from slml.runtime.validation import DEFAULT_MAX_ROWS, FLOAT_MAX, INT_RANGE, Feature, InputSpec

_ERR = {"$ref": "#/components/schemas/Error"}
_JSON_ERRORS = {
    "400": "Malformed JSON or a wrong top-level key",
    "401": "Missing or wrong x-api-key (only when the server requires one)",
    "413": "Body over the byte limit",
    "415": "Unsupported content type",
    "422": "Input does not match the model's signature, an empty batch or too many rows",
    "500": "The model raised; the log has the traceback under the request id",
}


def build_openapi(
    manifest: dict[str, Any], spec: InputSpec | None, *, max_rows: int = DEFAULT_MAX_ROWS
) -> dict[str, Any]:
    """Every request valid against the document is accepted (2xx) for a model with a
    signature; the server accepts a little more than it documents: ``inputs`` as
    columns (name -> equal-length lists, which JSON Schema cannot express) is described
    in text only."""
    name, version = str(manifest.get("name", "model")), str(manifest.get("version", ""))
    components = _schemas(spec, max_rows)
    refine(components, manifest.get("signature") or {})
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{name} (slml)",
            "version": version or "0",
            "description": f"Predictions from the {manifest.get('flavor', '')} model {name!r}.",
        },
        "paths": _paths(spec),
        "components": {"schemas": components},
    }


def _paths(spec: InputSpec | None) -> dict[str, Any]:
    predict = _predict_op("predict", "Predict", csv=False)
    invocations = _predict_op(
        "invocations", "Predict (SageMaker)", csv=True, csv_schema=_csv_schema(spec)
    )
    health = _get_op("health", "Liveness and model identity", "#/components/schemas/Health")
    return {
        "/predict": {"post": predict},
        "/invocations": {"post": invocations},
        "/healthz": {"get": health},
        "/ping": {"get": {**health, "operationId": "ping"}},
        "/metadata": {"get": _get_op("metadata", "The model's manifest", None)},
        "/openapi.json": {"get": _get_op("openapi", "This document", None)},
    }


def _predict_op(
    op_id: str, summary: str, *, csv: bool, csv_schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
    }
    if csv:
        content["text/csv"] = {"schema": csv_schema}
    responses = {
        "200": {
            "description": "Predictions, one per row",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Predictions"}}
            },
        }
    }
    for status, text in _JSON_ERRORS.items():
        responses[status] = {"description": text, "content": {"application/json": {"schema": _ERR}}}
    return {
        "operationId": op_id,
        "summary": summary,
        "requestBody": {"required": True, "content": content},
        "responses": responses,
    }


_CSV_NUMBER = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"


def _csv_schema(spec: InputSpec | None) -> dict[str, Any]:
    """Rows of comma-separated numbers when every feature is numeric; else any text."""
    feats = spec.features if spec else None
    numeric = feats and all(f.dtype.startswith(("float", "int", "uint")) for f in feats)
    if not feats or not numeric:
        return {"type": "string", "minLength": 1}
    row = ",".join([_CSV_NUMBER] * len(feats))
    return {"type": "string", "pattern": f"^{row}(\\r?\\n{row})*\\r?\\n?$"}


def _get_op(op_id: str, summary: str, ref: str | None) -> dict[str, Any]:
    schema = {"$ref": ref} if ref else {"type": "object"}
    return {
        "operationId": op_id,
        "summary": summary,
        "responses": {
            "200": {"description": summary, "content": {"application/json": {"schema": schema}}}
        },
    }


def _schemas(spec: InputSpec | None, max_rows: int) -> dict[str, Any]:
    return {
        "PredictRequest": _request_schema(spec, max_rows),
        "Predictions": {
            "type": "object",
            "required": ["predictions", "model", "version"],
            "properties": {
                "predictions": {"type": "array", "items": {}},
                "model": {"type": "string"},
                "version": {"type": "string"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "request_id"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                }
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string"},
                "model": {"type": "string"},
                "version": {"type": "string"},
            },
        },
    }


def _request_schema(spec: InputSpec | None, max_rows: int) -> dict[str, Any]:
    rows = {"type": "array", "minItems": 1, "maxItems": max_rows, "items": _row_schema(spec)}
    instances = {
        "type": "object",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {"instances": rows},
    }
    inputs = {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {"inputs": rows},
    }
    names = spec.names if spec else None
    columns = f" ({', '.join(names)})" if names else ""
    return {
        "oneOf": [instances, inputs],
        "description": (
            "Rows under 'instances' (or 'inputs'): lists of values in column order, or "
            "objects keyed by column name. Also accepted: 'inputs' as an object of columns"
            f"{columns}, each a list of values, all of the same length."
        ),
    }


def _row_schema(spec: InputSpec | None) -> dict[str, Any]:
    if spec is None:
        return {}
    if spec.features is None:
        return _tensor_schema(spec.item_shape, Feature(None, spec.dtype, spec.nullable))
    n = len(spec.features)
    as_list = {
        "type": "array",
        "minItems": n,
        "maxItems": n,
        "items": {"anyOf": [_value_schema(f) for f in _unique(spec.features)]},
    }
    if spec.names is None:
        return as_list
    as_object = {
        "type": "object",
        "additionalProperties": False,
        "required": spec.names,
        "properties": {f.name: _value_schema(f) for f in spec.features if f.name},
    }
    return {"oneOf": [as_list, as_object]}


def _tensor_schema(shape: tuple[int, ...], feat: Feature) -> dict[str, Any]:
    if not shape:
        return _value_schema(feat)
    out: dict[str, Any] = {"type": "array", "items": _tensor_schema(shape[1:], feat)}
    if shape[0] >= 0:
        out["minItems"] = out["maxItems"] = shape[0]
    return out


def _value_schema(feat: Feature) -> dict[str, Any]:
    dtype = feat.dtype
    if dtype.startswith("float"):
        limit = FLOAT_MAX.get(dtype, FLOAT_MAX["float64"])
        out: dict[str, Any] = {"type": "number", "minimum": -limit, "maximum": limit}
    elif dtype.startswith(("int", "uint")):
        lo, hi = INT_RANGE.get(dtype, INT_RANGE["int64"])
        out = {"type": "integer", "minimum": lo, "maximum": hi}
    elif dtype == "bool":
        out = {"type": "boolean"}
    elif dtype in ("string", "str"):
        out = {"type": "string"}
    else:
        out = {}
    if feat.nullable and out:
        out["nullable"] = True
    return out


def _unique(features: tuple[Feature, ...]) -> list[Feature]:
    seen: dict[tuple[str, bool], Feature] = {}
    for f in features:
        seen.setdefault((f.dtype, f.nullable), f)
    return list(seen.values())
