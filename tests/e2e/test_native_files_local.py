"""Native model files (XGBoost .json/.ubj, LightGBM model.txt, CatBoost .cbm) go
through `slml save FILE` → `slml deploy` (the real local provider, the bundle in its
own environment) → `slml invoke`, through the console script and real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_project import project_dir, run_slml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
cb = pytest.importorskip("catboost")

RNG = np.random.default_rng(1)
X = RNG.random((50, 3))
Y = (X[:, 1] > 0.5).astype(int)


def _files(project: Path) -> dict[str, Any]:
    """Each native file, written as its library writes it, and what it predicts."""
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=Y), 3)
    booster.save_model(str(project / "xgb.json"))
    booster.save_model(str(project / "xgb.ubj"))
    light = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, label=Y), 3)
    light.save_model(str(project / "model.txt"))
    cat = cb.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False).fit(X, Y)
    cat.save_model(str(project / "cat.cbm"))
    rows = X[:3]
    return {
        "xgb.json": booster.inplace_predict(rows), "xgb.ubj": booster.inplace_predict(rows),
        "model.txt": light.predict(rows), "cat.cbm": cat.predict(rows),
    }  # fmt: skip


__all__ = ["project_dir"]


def test_native_files_deploy_locally_and_answer(project_dir: Path) -> None:
    project = project_dir
    expected = _files(project)
    (project / "rows.json").write_text(json.dumps(X[:3].tolist()))
    for file, want in expected.items():
        run_slml(project, "save", file, "--out", "artifact", "--overwrite")
        (project / "slml.yaml").write_text("name: native\nmodel: artifact\nprovider: local\n")
        try:
            run_slml(project, "deploy")
            invoked = run_slml(project, "invoke", "--file", "rows.json", "--json")
            answer = json.loads(invoked.stdout)
            assert np.allclose(answer["predictions"], want, rtol=1e-5), file
        finally:
            run_slml(project, "destroy")
