"""GradientBoosting, HistGradientBoosting, KNeighbors and MLP models (the ones whose
pickles hold Cython functions) go through `slml save` → `slml deploy` (the real local
provider, the bundle in its own environment) → `slml invoke`, through the console
script and real HTTP."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_project import project_dir, run_slml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = "name: {name}\nmodel: artifact\nprovider: local\nstage: dev\n"


def _models() -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor

    return {
        "gbc": GradientBoostingClassifier(n_estimators=5, random_state=0),
        "hgbr": HistGradientBoostingRegressor(max_iter=5),
        "knr": KNeighborsRegressor(n_neighbors=3),
        "mlpr": MLPRegressor(hidden_layer_sizes=(4,), max_iter=50, random_state=0),
    }


__all__ = ["project_dir"]


def test_cython_backed_models_deploy_locally_and_answer(project_dir: Path) -> None:
    import joblib

    tmp_path = project_dir
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    rows = X[:3].tolist()
    for name, model in _models().items():
        project = tmp_path / name
        project.mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        joblib.dump(model, project / "model.joblib")
        (project / "sample.json").write_text(json.dumps(rows))
        (project / "slml.yaml").write_text(CONFIG.format(name=name))
        run_slml(project, "save", "model.joblib", "--out", "artifact", "--sample", "sample.json")
        try:
            run_slml(project, "deploy")
            invoked = run_slml(project, "invoke", "--file", "sample.json", "--json")
            answer = json.loads(invoked.stdout)
            assert np.allclose(answer["predictions"], model.predict(X[:3])), name
        finally:
            run_slml(project, "destroy")
