"""`slml save` with --serialization skops, an MLflow directory, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run


@pytest.fixture
def iris_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier

    monkeypatch.chdir(tmp_path)
    X, y = load_iris(return_X_y=True)
    joblib.dump(HistGradientBoostingClassifier(max_iter=3).fit(X, y), tmp_path / "iris.joblib")
    return tmp_path / "iris.joblib"


def test_save_with_skops_prints_the_trusted_types(
    iris_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["save", str(iris_file), "--serialization", "skops", "--no-check"],
                         capsys)  # fmt: skip
    assert code == 0, err
    assert "skops trusted types: sklearn.ensemble._hist_gradient_boosting" in out
    manifest = json.loads((iris_file.parent / "artifacts/iris/slml-model.json").read_text())
    assert manifest["flavor_options"]["serialization"] == "skops"


def test_save_refuses_what_it_cannot_read(
    iris_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["save", "nowhere"], capsys)
    assert code == 2 and "neither a model file nor an MLflow model" in err
    mlflow_dir = iris_file.parent / "mlf"
    mlflow_dir.mkdir()
    (mlflow_dir / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    code, _, err = run(["save", str(mlflow_dir), "--serialization", "skops"], capsys)
    assert code == 2 and "do not apply to an MLflow model" in err
    code, _, err = run(["save", str(iris_file), "--serialization", "pickle5"], capsys)
    assert code == 2 and "is not one of joblib, skops" in err and "Traceback" not in err
