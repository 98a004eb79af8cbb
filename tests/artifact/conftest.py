"""Fixtures for the artifact (save side) tests: the iris data and fitted models."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from artifact_helpers import import_user_module


@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target


@pytest.fixture(scope="session")
def iris_clf(iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=500, random_state=0).fit(X, y)


@pytest.fixture
def user_modules(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """``make(source)`` writes a uniquely named module under tmp/src and imports it;
    sys.path and sys.modules are restored afterwards."""
    src = tmp_path / "src"
    names: list[str] = []

    def make(source: str) -> Any:
        names.append(f"user_model_{uuid.uuid4().hex[:8]}")
        return import_user_module(src, names[-1], source)

    try:
        yield make
    finally:
        if str(src) in sys.path:
            sys.path.remove(str(src))
        for name in names:
            sys.modules.pop(name, None)
