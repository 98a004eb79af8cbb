"""The OpenAPI document of models whose rows are strings or several named tensors, and
of structured predictions (a transformers pipeline's records)."""

from __future__ import annotations

from typing import Any

import schemathesis

from slml.runtime.openapi import build_openapi
from slml.runtime.validation import input_spec


def document(signature: dict[str, Any]) -> dict[str, Any]:
    manifest = {"name": "m", "version": "1", "flavor": "onnx", "signature": signature}
    doc = build_openapi(manifest, input_spec(signature["inputs"]))
    schemathesis.openapi.from_dict(doc).validate()
    return doc["components"]["schemas"]


def test_strings_in_records_out() -> None:
    schemas = document({
        "inputs": {"kind": "tensor", "dtype": "string", "shape": [-1]},
        "outputs": {"kind": "records", "fields": [{"name": "label", "dtype": "string"},
                                                  {"name": "score", "dtype": "float64"}]},
    })  # fmt: skip
    rows = schemas["PredictRequest"]["oneOf"][0]["properties"]["instances"]
    assert rows["items"] == {"type": "string"}
    item = schemas["Predictions"]["properties"]["predictions"]["items"]
    assert item["required"] == ["label", "score"]
    assert item["properties"]["label"] == {"type": "string"}


def test_named_tensors_and_records_per_row() -> None:
    schemas = document({
        "inputs": {"kind": "tensors", "inputs": [
            {"name": "input_ids", "dtype": "int64", "shape": [-1, -1]},
            {"name": "attention_mask", "dtype": "int64", "shape": [-1, 8]}]},
        "outputs": {"kind": "records_per_row", "fields": [{"name": "word", "dtype": "string"}]},
    })  # fmt: skip
    row = schemas["PredictRequest"]["oneOf"][1]["properties"]["inputs"]["items"]
    assert row["required"] == ["input_ids", "attention_mask"]
    assert row["properties"]["input_ids"] == {"type": "array", "items": {"type": "integer"}}
    assert row["properties"]["attention_mask"]["maxItems"] == 8
    item = schemas["Predictions"]["properties"]["predictions"]["items"]
    assert item["type"] == "array" and item["items"]["required"] == ["word"]
