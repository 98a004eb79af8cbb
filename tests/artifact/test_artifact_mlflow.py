"""MLflow model directories: mapped onto slml's native flavors, else mlflow.pyfunc;
MLflow's signature, requirements and python_env in the manifest. (models:/ and runs:/
URIs against a real tracking server: tests/e2e/test_mlflow_local.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.artifact import load_model
from slml.artifact.flavors import mlflow as mlflow_flavor
from slml.artifact.mlflow_source import default_name, is_mlflow_source, save_mlflow_model
from slml.errors import ArtifactError

mlflow = pytest.importorskip("mlflow")
ADDER = Path(__file__).parents[1] / "fixtures" / "mlflow" / "adder_model.py"


def test_sklearn_skops_maps_to_the_sklearn_flavor_with_skops(
    tmp_path: Path, iris: Any, iris_clf: Any
) -> None:
    import mlflow.sklearn

    X, _ = iris
    mlflow.sklearn.save_model(iris_clf, tmp_path / "mlf", input_example=X[:3])
    assert is_mlflow_source(tmp_path / "mlf")
    info = save_mlflow_model(tmp_path / "mlf", tmp_path / "art", check=True)
    manifest = info.manifest
    assert info.flavor == "sklearn"
    assert manifest["flavor_options"]["serialization"] == "skops"
    assert manifest["signature"]["inputs"] == {"kind": "tensor", "dtype": "float64",
                                               "shape": [-1, 4]}  # fmt: skip
    source = manifest["source"]
    assert source["kind"] == "mlflow" and source["uri"] == str((tmp_path / "mlf").absolute())
    assert source["mlflow_version"] == mlflow.__version__
    assert any(r.startswith("skops==") for r in source["requirements"])
    assert source["python_version"] and source["mlflow_flavors"] == ["python_function", "sklearn"]
    assert not any(r.startswith("mlflow") for r in manifest["requirements"])
    assert load_model(info.path).predict(X[:10].tolist()) == iris_clf.predict(X[:10]).tolist()


def test_sklearn_cloudpickle_is_resaved_with_joblib(
    tmp_path: Path, iris: Any, iris_clf: Any
) -> None:
    import mlflow.sklearn

    mlflow.sklearn.save_model(iris_clf, tmp_path / "mlf", serialization_format="cloudpickle")
    info = save_mlflow_model(tmp_path / "mlf", tmp_path / "art", version="7")
    assert info.flavor == "sklearn" and info.version == "7"
    assert info.manifest["flavor_options"] == {"file": "model/model.joblib", "method": "predict"}
    assert info.manifest["signature"] is None  # no input example, no MLflow signature


def test_native_boosting_models_map_to_their_flavors(tmp_path: Path, iris: Any) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm
    import mlflow.xgboost
    import xgboost as xgb

    X, y = iris
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, y), 3)
    mlflow.xgboost.save_model(booster, tmp_path / "xgb", input_example=X[:2])
    light = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                      lgb.Dataset(X, y), 3)  # fmt: skip
    mlflow.lightgbm.save_model(light, tmp_path / "lgb", input_example=X[:2])
    for name, model in (("xgb", booster), ("lgb", light)):
        info = save_mlflow_model(tmp_path / name, tmp_path / f"{name}-art")
        assert info.flavor == {"xgb": "xgboost", "lgb": "lightgbm"}[name]
        want = model.inplace_predict(X[:4]) if name == "xgb" else model.predict(X[:4])
        assert np.allclose(load_model(info.path).predict(X[:4].tolist()), want, rtol=1e-5)


def test_a_pyfunc_model_ships_the_mlflow_directory(tmp_path: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    mlflow.pyfunc.save_model(tmp_path / "mlf", python_model=str(ADDER), input_example=example)
    info = save_mlflow_model(tmp_path / "mlf", tmp_path / "art", check=True)
    manifest = info.manifest
    assert info.flavor == "mlflow"
    assert manifest["flavor_options"]["loader"] == "slml.runtime.mlflow_pyfunc:load"
    assert manifest["requirements"][0] == f"mlflow=={mlflow.__version__}"
    assert manifest["signature"] == {"inputs": {"kind": "columns", "columns": [
        {"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "float64"}]}, "outputs": None}
    assert "model/mlflow/MLmodel" in info.files
    assert load_model(info.path).predict([{"a": 1.0, "b": 2.0}, {"a": 0, "b": 0}]) == [3.5, 0.5]
    with pytest.raises(ArtifactError, match="answers its predict only"):
        save_mlflow_model(tmp_path / "mlf", tmp_path / "art2", method="predict_proba")


def test_signature_conversion() -> None:
    def sig(inputs: str) -> Any:
        return mlflow_flavor.signature(mlflow_flavor.MlflowModel(Path("."), {
            "flavors": {}, "signature": {"inputs": inputs}}))  # fmt: skip

    tensor = '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]'
    assert sig(tensor)["inputs"] == {"kind": "tensor", "dtype": "float32", "shape": [-1, 3]}
    columns = '[{"type": "long", "name": "n"}, {"type": "string", "name": "s"}]'
    assert sig(columns)["inputs"]["columns"] == [{"name": "n", "dtype": "int64"},
                                                 {"name": "s", "dtype": "string"}]  # fmt: skip
    assert sig('[{"type": "binary", "name": "img"}]') is None  # slml cannot check it
    assert sig('[{"type": "double"}]') is None  # unnamed column
    assert sig("not json") is None


def test_pyfunc_requirements_need_full_mlflow(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "mlflow-skinny==3.1.0\n# a comment\n-r other.txt\ncloudpickle==3.1.2\n"
    )
    model = mlflow_flavor.MlflowModel(tmp_path, {"flavors": {}})
    assert mlflow_flavor.pyfunc_requirements(model) == [
        f"mlflow=={mlflow.__version__}", "cloudpickle==3.1.2",
    ]  # fmt: skip


def test_unusable_sources_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ArtifactError, match="has no MLmodel file"):
        save_mlflow_model(tmp_path, tmp_path / "art")
    (tmp_path / "MLmodel").write_text("flavors:\n  h2o: {}\n")
    with pytest.raises(ArtifactError, match="no python_function flavor") as caught:
        save_mlflow_model(tmp_path, tmp_path / "art")
    assert "sklearn" in (caught.value.hint or "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ArtifactError, match="MLFLOW_TRACKING_URI, which is not set"):
        save_mlflow_model("models:/iris/1", tmp_path / "art")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(ArtifactError, match="not an MLflow model URI"):
        save_mlflow_model("models:/a/b/c", tmp_path / "art")


def test_default_names() -> None:
    assert default_name("models:/iris/3") == default_name("models:/iris@prod") == "iris"
    assert default_name("runs:/0123abcd/sub/model") == "model"
    assert default_name("/x/my-mlflow-model/") == "my-mlflow-model"
