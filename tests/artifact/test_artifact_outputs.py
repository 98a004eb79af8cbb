"""Output options: ``method="predict_proba"`` / ``decision_function`` served with the
class labels, and a model that does not return one prediction per row is a 500
``model_error`` naming the counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from slml.artifact import load_model, save_model
from slml.errors import ArtifactError
from slml.runtime.app import create_app


def test_predict_proba_answers_with_class_labels(tmp_path: Path, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = LogisticRegression(max_iter=500).fit(X, names)
    info = save_model(model, tmp_path / "p", sample_input=X[:3], method="predict_proba")
    assert info.manifest["flavor_options"] == {
        "file": "model/model.joblib", "method": "predict_proba",
        "classes": ["setosa", "versicolor", "virginica"],
    }  # fmt: skip
    assert info.manifest["signature"]["outputs"]["shape"] == [-1, 3]
    with TestClient(create_app(info.path)) as client:
        body = client.post("/predict", json={"instances": X[:2].tolist()}).json()
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    assert np.allclose(body["predictions"], model.predict_proba(X[:2]))
    decision = save_model(model, tmp_path / "d", method="decision_function")
    assert np.allclose(load_model(decision.path).predict(X[:2].tolist()),
                       model.decision_function(X[:2]))  # fmt: skip


def test_a_method_the_model_lacks_is_refused_at_save(tmp_path: Path, iris: Any) -> None:
    from sklearn.svm import SVC

    model = SVC().fit(*iris)
    with pytest.raises(ArtifactError, match="no method 'predict_proba'") as info:
        save_model(model, tmp_path / "m", method="predict_proba")
    assert "probability=True" in (info.value.hint or "")
    with pytest.raises(ArtifactError, match="method='transform' is not one of"):
        save_model(model, tmp_path / "m", method="transform")


def test_one_prediction_per_row_or_model_error(
    tmp_path: Path, user_modules: Callable[[str], Any]
) -> None:
    module = user_modules(
        """
        class Total:
            def predict(self, rows):
                return [sum(sum(r) for r in rows)]
        """
    )
    info = save_model(module.Total(), tmp_path / "t", sample_input=[[1.0, 2.0]])
    with TestClient(create_app(info.path)) as client:
        one = client.post("/predict", json={"instances": [[1.0, 2.0]]})
        two = client.post("/predict", json={"instances": [[1.0, 2.0], [3.0, 4.0]]})
    assert one.status_code == 200 and one.json()["predictions"] == [3.0]
    assert two.status_code == 500
    error = two.json()["error"]
    assert error["code"] == "model_error"
    assert "1 prediction(s) for 2 input row(s)" in error["message"]
