"""Fixtures for the runtime tests (helpers live in runtime_support.py)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    IRIS_SIGNATURE,
    LINEAR_CODE,
    LINEAR_SIGNATURE,
    ListHandler,
    make_client,
    write_manifest,
    write_python_artifact,
)
from starlette.testclient import TestClient


@pytest.fixture
def python_artifact(tmp_path: Path) -> Path:
    """Weighted sum of columns a (float64) and b (int64); raises on a negative ``a``."""
    return write_python_artifact(
        tmp_path / "linear",
        LINEAR_CODE,
        module="slml_test_linear",
        signature=LINEAR_SIGNATURE,
        data={"weights": [2.0, 10.0]},
    )


@pytest.fixture
def unsigned_artifact(tmp_path: Path) -> Path:
    """A python model without signature that raises ValueError on rows of the wrong width."""
    code = """
        class Model:
            def predict(self, rows):
                if any(len(r) != 2 for r in rows):
                    raise ValueError("each row needs exactly 2 values")
                return [float("nan") if r[0] == 0 else r[0] / r[1] for r in rows]
    """
    return write_python_artifact(tmp_path / "unsigned", code, module="slml_test_unsigned")


@pytest.fixture(scope="session")
def _onnx_master(tmp_path_factory, iris_model) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        iris_model,
        initial_types=[("features", FloatTensorType([None, 4]))],
        options={id(iris_model): {"zipmap": False}},
        target_opset=17,
    )
    dest = tmp_path_factory.mktemp("onnx") / "iris-onnx"
    (dest / "model").mkdir(parents=True)
    (dest / "model" / "model.onnx").write_bytes(onx.SerializeToString())
    return write_manifest(
        dest,
        name="iris-onnx",
        flavor="onnx",
        signature=IRIS_SIGNATURE,
        flavor_options={"file": "model/model.onnx", "input_name": "features", "output_index": 0},
    )


@pytest.fixture
def onnx_artifact(tmp_path: Path, _onnx_master: Path) -> Path:
    dest = tmp_path / "iris-onnx"
    shutil.copytree(_onnx_master, dest)
    return dest


@pytest.fixture
def log_records() -> Iterator[tuple[logging.Logger, list[dict[str, Any]]]]:
    logger = logging.getLogger(f"slml.runtime.test.{id(object())}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = ListHandler()
    logger.addHandler(handler)
    try:
        yield logger, handler.records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def iris_client(iris_artifact: Path, log_records) -> TestClient:
    logger, _ = log_records
    return make_client(iris_artifact, logger=logger, max_batch_rows=50)
