"""onnx flavor (graphs converted with skl2onnx) and export='onnx' with its parity check."""

from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from artifact_helpers import siblings

from slml.artifact import load_model, save_model
from slml.errors import ArtifactError

ONNX_PINS = [
    f"onnxruntime=={metadata.version('onnxruntime')}",
    f"numpy=={metadata.version('numpy')}",
]


@pytest.fixture(scope="module")
def iris_onnx(iris_clf: Any) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(
        iris_clf,
        initial_types=[("features", FloatTensorType([None, 4]))],
        options={"zipmap": False},
    )


def test_model_proto_round_trip(tmp_path: Path, iris: Any, iris_clf: Any, iris_onnx: Any) -> None:
    X, _ = iris
    info = save_model(iris_onnx, tmp_path / "o", sample_input=X[:5])
    manifest = info.manifest
    assert info.flavor == "onnx"
    assert manifest["framework"] == {"name": "onnx", "version": metadata.version("onnx")}
    assert manifest["requirements"] == ONNX_PINS
    assert manifest["flavor_options"] == {
        "file": "model/model.onnx",
        "input_name": "features",
        "output_index": 0,
    }
    assert manifest["signature"] == {
        "inputs": {"kind": "tensor", "dtype": "float32", "shape": [-1, 4]},
        "outputs": {"kind": "tensor", "dtype": "int64", "shape": [-1]},
    }
    assert load_model(info.path).predict(X.tolist()) == iris_clf.predict(X).tolist()


def test_path_and_bytes_are_onnx_too(tmp_path: Path, iris_onnx: Any) -> None:
    data = iris_onnx.SerializeToString()
    (tmp_path / "iris.onnx").write_bytes(data)
    from_path = save_model(tmp_path / "iris.onnx", tmp_path / "a")
    from_bytes = save_model(data, tmp_path / "b")
    assert from_path.flavor == from_bytes.flavor == "onnx"
    assert from_path.manifest["files"] == from_bytes.manifest["files"]  # same model bytes
    # no sample: the signature comes from the graph
    assert from_path.manifest["signature"]["inputs"]["shape"] == [-1, 4]
    assert (tmp_path / "a" / "model" / "model.onnx").read_bytes() == data


def test_unparseable_graphs_are_refused(tmp_path: Path) -> None:
    # graphs with several inputs are served: tests/artifact/test_artifact_onnx_inputs.py
    with pytest.raises(ArtifactError, match="cannot be parsed"):
        save_model(b"not an onnx graph", tmp_path / "a")
    assert siblings(tmp_path / "a") == []


def test_export_to_onnx_with_parity_on_iris(tmp_path: Path, iris: Any, iris_clf: Any) -> None:
    X, _ = iris
    info = save_model(iris_clf, tmp_path / "iris-onnx", sample_input=X, export="onnx")
    manifest = info.manifest
    assert info.flavor == "onnx"
    assert manifest["requirements"] == ONNX_PINS  # no scikit-learn, no SciPy
    assert manifest["exported_from"] == {
        "flavor": "sklearn",
        "framework": {"name": "scikit-learn", "version": metadata.version("scikit-learn")},
        "parity": {"rows": 150, "check": "equal", "mismatches": 0},
    }
    assert manifest["flavor_options"]["output_index"] == 0  # the label output
    assert manifest["signature"]["outputs"] == {"kind": "tensor", "dtype": "int64", "shape": [-1]}
    assert load_model(info.path).predict(X.tolist()) == iris_clf.predict(X).tolist()


def test_export_of_a_regressor_records_its_tolerance(tmp_path: Path, iris: Any) -> None:
    from sklearn.linear_model import Ridge

    X, y = iris
    model = Ridge().fit(X, y.astype(float))
    info = save_model(model, tmp_path / "r", sample_input=X[:30], export="onnx")
    parity = info.manifest["exported_from"]["parity"]
    assert parity["check"] == "allclose" and parity["max_abs_diff"] < 1e-4
    # skl2onnx returns [N, 1]; the export reshapes it so clients get sklearn's [N]
    assert info.manifest["signature"]["outputs"]["shape"] == [-1]
    got = np.asarray(load_model(info.path).predict(X.tolist()))
    assert got.shape == (150,)
    assert np.allclose(got, model.predict(X), rtol=1e-4, atol=1e-4)


def test_export_refused_for_an_estimator_skl2onnx_cannot_convert(tmp_path: Path, iris: Any) -> None:
    from sklearn.semi_supervised import LabelSpreading

    X, y = iris
    model = LabelSpreading().fit(X, y)
    with pytest.raises(ArtifactError, match="cannot convert LabelSpreading") as info:
        save_model(model, tmp_path / "ls", sample_input=X[:5], export="onnx")
    assert "save without export=" in str(info.value)
    assert siblings(tmp_path / "ls") == []
    assert save_model(model, tmp_path / "ls", sample_input=X[:5]).flavor == "sklearn"


def test_export_refused_when_predictions_differ(tmp_path: Path) -> None:
    """Two points float32 cannot tell apart, on either side of a float64 decision
    boundary: the float32 ONNX graph puts both in one class, sklearn does not."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [2.0]], [0, 1])
    model.coef_, model.intercept_ = np.array([[1e9]]), np.array([-1e9 - 0.5])
    X = np.array([[1.0], [1.0 + 1e-9]])
    assert model.predict(X).tolist() == [0, 1]
    with pytest.raises(ArtifactError, match="disagrees with the model on 1 of 2") as info:
        save_model(model, tmp_path / "t", sample_input=X, export="onnx")
    assert "float32" in str(info.value) and "save without export=" in str(info.value)
    assert siblings(tmp_path / "t") == []


def test_export_needs_a_sample_and_an_sklearn_model(
    tmp_path: Path, iris_clf: Any, iris_onnx: Any
) -> None:
    with pytest.raises(ArtifactError, match="needs sample_input"):
        save_model(iris_clf, tmp_path / "a", export="onnx")
    with pytest.raises(ArtifactError, match="scikit-learn models"):
        save_model(iris_onnx, tmp_path / "b", export="onnx")
    with pytest.raises(ArtifactError, match="export='tflite' is not supported"):
        save_model(iris_clf, tmp_path / "c", export="tflite")


def test_export_of_a_mixed_type_pipeline_says_why_not(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "city": ["a", "b", "a", "b"]})
    prep = ColumnTransformer([("c", OneHotEncoder(), ["city"])], remainder="passthrough")
    model = Pipeline([("p", prep), ("m", LogisticRegression())]).fit(frame, [0, 1, 0, 1])
    with pytest.raises(ArtifactError, match=r"numeric features only.*\(city\)"):
        save_model(model, tmp_path / "m", sample_input=frame, export="onnx")
