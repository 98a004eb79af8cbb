"""Fuzz the runtime through its own OpenAPI document (schemathesis 4 + hypothesis): for
generated valid (positive) and invalid (negative) requests to every operation the
document lists, no 5xx, and every response's status, content type and body conform to
the document the server publishes.

schemathesis' pytest integration (``from_fixture``/``parametrize``) does not run under
pytest 9 (it reads ``Function._nodeid``, which pytest removed), so the tests drive each
operation's hypothesis strategy directly: the same cases and checks, bounded by
``max_examples``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from slml.runtime.app import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXPECTED_OPERATIONS = {
    "POST /predict",
    "POST /invocations",
    "GET /healthz",
    "GET /ping",
    "GET /metadata",
}
# Huge generated floats overflow inside scikit-learn (the answer is then null); fine.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
MAX_EXAMPLES = {"POST": 80, "GET": 10}


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("slml.runtime.fuzz")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _schema(model_dir: Path) -> Any:
    app = create_app(model_dir, logger=_quiet_logger(), max_batch_rows=100)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema: Any) -> dict[str, Any]:
    ops = {}
    for result in schema.get_all_operations():
        op = result.ok()
        ops[f"{op.method.upper()} {op.path}"] = op
    return ops


@pytest.fixture(scope="module")
def sklearn_ops(module_artifact: Path) -> dict[str, Any]:
    return _operations(_schema(module_artifact))


@pytest.fixture(scope="module")
def onnx_ops(tmp_path_factory: pytest.TempPathFactory, iris_model: Any) -> dict[str, Any]:
    """The opt-in ONNX export of the iris model (float32 tensor signature)."""
    from sklearn.datasets import load_iris

    import slml

    dest = tmp_path_factory.mktemp("fuzz") / "iris-onnx"
    sample = load_iris().data[:5]
    slml.save_model(iris_model, dest, sample_input=sample, name="iris", export="onnx")
    return _operations(_schema(dest))


def _fuzz(operation: Any, mode: GenerationMode) -> None:
    limit = MAX_EXAMPLES[operation.method.upper()]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=limit,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    run()


def test_document_lists_every_route(sklearn_ops: dict[str, Any]) -> None:
    assert set(sklearn_ops) == EXPECTED_OPERATIONS


CASES = [
    (op, mode)
    for op in sorted(EXPECTED_OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if op.startswith("POST") or mode is GenerationMode.POSITIVE  # GETs take no input
]


@pytest.mark.slow
@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_sklearn_runtime_conforms(
    sklearn_ops: dict[str, Any], operation: str, mode: GenerationMode
) -> None:
    _fuzz(sklearn_ops[operation], mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_onnx_runtime_conforms(onnx_ops: dict[str, Any], mode: GenerationMode) -> None:
    assert set(onnx_ops) == EXPECTED_OPERATIONS
    _fuzz(onnx_ops["POST /predict"], mode)
