"""A short schemathesis run against the app: schema-valid requests are answered 2xx,
schema-violating ones 4xx, never a 500, and responses match the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from slml.runtime.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_schema(_iris_artifact_master):
    """The iris app (read-only use of the session artifact), loaded once for the module."""
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(_iris_artifact_master))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(fuzz_schema, mode):
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/invocations", "/healthz"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to violate in a bodiless GET

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()
