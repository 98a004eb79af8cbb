"""Helpers for the runtime tests: artifacts of every flavor written by hand to the format
contract (slml/runtime/manifest.py), log capture and app clients."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from slml.runtime.app import create_app
from slml.runtime.manifest import MANIFEST_FILE, hash_tree

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

IRIS_SIGNATURE = {
    "inputs": {"kind": "tensor", "dtype": "float32", "shape": [-1, 4], "names": IRIS_COLUMNS},
    "outputs": {"kind": "tensor", "dtype": "int64", "shape": [-1]},
}


def write_manifest(dest: Path, **fields: Any) -> Path:
    """Hash the files under ``dest`` and write its manifest with ``fields``."""
    manifest = {
        "format": 1,
        "name": "model",
        "version": "1",
        "framework": {"name": "python", "version": sys.version.split()[0]},
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "requirements": [],
        "signature": None,
        "created_at": "2026-11-21T00:00:00+00:00",
        "created_by": "tests@localhost",
        "git_commit": None,
        "slml_version": "0.1.0",
        **fields,
    }
    manifest["files"] = hash_tree(dest)
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return dest


def write_python_artifact(
    dest: Path,
    code: str,
    *,
    module: str,
    cls: str = "Model",
    signature: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    name: str = "pymodel",
) -> Path:
    """A python-flavor artifact whose class lives in ``model/code/<module>.py``."""
    code_dir = dest / "model" / "code"
    code_dir.mkdir(parents=True)
    (code_dir / f"{module}.py").write_text(textwrap.dedent(code))
    if data is not None:
        (dest / "model" / "data").mkdir(parents=True)
        (dest / "model" / "data" / "params.json").write_text(json.dumps(data))
    options = {"module": module, "class": cls, "code_dir": "model/code", "data_dir": "model/data"}
    return write_manifest(
        dest, name=name, flavor="python", signature=signature, flavor_options=options
    )


LINEAR_CODE = """
    import json

    class Model:
        def load(self, data_dir):
            with open(data_dir / "params.json") as fh:
                self.weights = json.load(fh)["weights"]

        def predict(self, rows):
            if rows[0][0] < 0:
                raise RuntimeError("boom: this model cannot take negative values")
            return [sum(w * x for w, x in zip(self.weights, row)) for row in rows]
"""

LINEAR_SIGNATURE = {
    "inputs": {
        "kind": "columns",
        "columns": [{"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "int64"}],
    },
    "outputs": None,
}


class ListHandler(logging.Handler):
    """Collects the JSON log records the app writes."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(record.getMessage()))


def make_client(model_dir: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(model_dir, **kwargs), raise_server_exceptions=False)
