"""GradientBoosting, HistGradientBoosting, KNeighbors and MLP models (the ones whose
pickles hold Cython functions) go through `slml save` → `slml deploy` (the real local
provider, the bundle in its own environment) → `slml invoke`, through the console
script and real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLML = str(Path(sys.executable).with_name("slml"))
CONFIG = "name: {name}\nmodel: artifact\nprovider: local\nstage: dev\n"


def _slml(project: Path, *args: str) -> str:
    done = subprocess.run([SLML, *args], cwd=project, capture_output=True, text=True,
                          timeout=600, env=os.environ.copy(), check=False)
    assert done.returncode == 0, f"slml {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


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


def test_cython_backed_models_deploy_locally_and_answer(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib

    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "slml-cache"))
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
        _slml(project, "save", "model.joblib", "--out", "artifact", "--sample", "sample.json")
        try:
            _slml(project, "deploy")
            answer = json.loads(_slml(project, "invoke", "--file", "sample.json", "--json"))
            assert np.allclose(answer["predictions"], model.predict(X[:3])), name
        finally:
            _slml(project, "destroy")
