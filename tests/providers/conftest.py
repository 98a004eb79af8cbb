"""A Pulumi engine for rollout tests: ``up`` runs the real program under Pulumi's mocks
(so the resources a deploy or shift would set are recorded) and answers the outputs
the test gives, standing for what the cloud computes."""

from __future__ import annotations

from typing import Any

import pytest

from slml.engine import offline_plan
from slml.providers.base import PlannedResource


class MockedEngine:
    """Stands for PulumiEngine; one instance per factory, shared by every call."""

    def __init__(self) -> None:
        self.outputs: dict[str, Any] = {}
        self.runs: list[tuple[PlannedResource, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> MockedEngine:
        return self

    def up(self, program, *, on_output=None) -> dict[str, Any]:
        self.runs.append(offline_plan(program, project="p", stack="s"))
        return dict(self.outputs)

    def resource(self, typ: str, run: int = -1) -> PlannedResource:
        return next(r for r in self.runs[run] if r.type == typ)

    def resources(self, typ: str, run: int = -1) -> list[PlannedResource]:
        return [r for r in self.runs[run] if r.type == typ]


@pytest.fixture
def mocked_engine() -> MockedEngine:
    return MockedEngine()
