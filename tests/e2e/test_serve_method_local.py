"""slml.yaml's serve-time `method:` through a real local deployment: the artifact was
saved serving predict; the deployment answers predict_proba with the class labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_project import project_dir, run_slml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["project_dir"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_method_in_slml_yaml_is_served(project_dir: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    joblib.dump(clf, project_dir / "iris.joblib")
    (project_dir / "rows.json").write_text(json.dumps(ROWS))
    run_slml(project_dir, "save", "iris.joblib", "--out", "artifact")
    (project_dir / "slml.yaml").write_text(
        "name: proba\nmodel: artifact\nprovider: local\nmethod: predict_proba\n"
    )
    try:
        run_slml(project_dir, "deploy")
        answer = json.loads(run_slml(project_dir, "invoke", "--file", "rows.json",
                                     "--json").stdout)  # fmt: skip
    finally:
        run_slml(project_dir, "destroy")
    assert np.allclose(answer["predictions"], clf.predict_proba(ROWS))
    assert answer["classes"] == [0, 1, 2]
