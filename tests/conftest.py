"""Shared fixtures. ``iris_artifact`` writes an artifact straight to the format contract
(slml/runtime/manifest.py), so runtime, bundle and provider tests do not depend on the
save side."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from slml.runtime.manifest import MANIFEST_FILE, hash_tree


@pytest.fixture(autouse=True)
def _main_thread_event_loop() -> None:
    """Pulumi's test helpers (``pulumi.runtime.test``, mocks) call
    ``asyncio.get_event_loop()``; after any test that used ``asyncio.run`` the main
    thread has none, and they would fail depending on test order. Give it one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _train_iris(seed: int = 0, max_iter: int = 200):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    return LogisticRegression(max_iter=max_iter, random_state=seed).fit(data.data, data.target)


def write_sklearn_artifact(dest: Path, model, *, version: str = "1", name: str = "iris") -> Path:
    """An sklearn artifact (tensor signature, 4 float64 features) written by hand."""
    import joblib
    import numpy
    import sklearn

    (dest / "model").mkdir(parents=True, exist_ok=True)
    joblib.dump(model, dest / "model" / "model.joblib")
    manifest = {
        "format": 1,
        "name": name,
        "version": version,
        "flavor": "sklearn",
        "framework": {"name": "scikit-learn", "version": sklearn.__version__},
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "requirements": [
            f"scikit-learn=={sklearn.__version__}",
            f"numpy=={numpy.__version__}",
            f"joblib=={joblib.__version__}",
        ],
        "signature": {
            "inputs": {
                "kind": "tensor",
                "dtype": "float64",
                "shape": [-1, 4],
                "names": IRIS_COLUMNS,
            },
            "outputs": {"kind": "tensor", "dtype": "int64", "shape": [-1]},
        },
        "flavor_options": {"file": "model/model.joblib", "method": "predict"},
        "created_at": "2026-11-21T00:00:00+00:00",
        "created_by": "tests@localhost",
        "git_commit": None,
        "slml_version": "0.1.0",
    }
    manifest["files"] = hash_tree(dest)
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return dest


@pytest.fixture(scope="session")
def iris_model():
    return _train_iris()


@pytest.fixture(scope="session")
def _iris_artifact_master(tmp_path_factory, iris_model) -> Path:
    return write_sklearn_artifact(tmp_path_factory.mktemp("artifacts") / "iris", iris_model)


@pytest.fixture
def iris_artifact(tmp_path, _iris_artifact_master) -> Path:
    """A fresh copy per test, so a test may tamper with it."""
    dest = tmp_path / "iris"
    shutil.copytree(_iris_artifact_master, dest)
    return dest


@pytest.fixture
def iris_rows() -> list[list[float]]:
    return [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
