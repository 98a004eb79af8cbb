"""save_model_file: artifacts from joblib, pickle and .onnx files made elsewhere."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import pytest

from slml.artifact import load_model, save_model_file
from slml.errors import ArtifactError


@pytest.mark.parametrize("suffix", [".joblib", ".pkl", ".pickle"])
def test_pickled_model_files(tmp_path: Path, iris: Any, iris_clf: Any, suffix: str) -> None:
    source = tmp_path / f"model{suffix}"
    if suffix == ".joblib":
        joblib.dump(iris_clf, source)
    else:
        source.write_bytes(pickle.dumps(iris_clf))
    info = save_model_file(source, tmp_path / "art", sample_input=iris[0][:3], version="7")
    assert (info.flavor, info.version, info.name) == ("sklearn", "7", "art")
    assert (
        load_model(info.path).predict(iris[0][:5].tolist())
        == iris_clf.predict(iris[0][:5]).tolist()
    )


def test_onnx_file_schema_comes_from_the_graph(tmp_path: Path, iris_clf: Any) -> None:
    source = tmp_path / "iris.onnx"
    source.write_bytes(_convert(iris_clf))
    info = save_model_file(source, tmp_path / "art")
    assert info.flavor == "onnx"
    assert info.manifest["signature"] == {
        "inputs": {"kind": "tensor", "dtype": "float32", "shape": [-1, 4]},
        "outputs": {"kind": "tensor", "dtype": "int64", "shape": [-1]},
    }
    assert load_model(info.path).predict([[5.1, 3.5, 1.4, 0.2]]) == [0]


def _convert(model: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    proto = convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, 4]))], options={"zipmap": False}
    )
    return proto.SerializeToString()


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        save_model_file(tmp_path / "missing.joblib", tmp_path / "a")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="cannot tell what kind of model") as unknown:
        save_model_file(tmp_path / "model.h5", tmp_path / "a")
    for native in ("model.joblib", ".onnx", "model.json or model.ubj", "model.txt", "model.cbm",
                   "results.save"):  # fmt: skip
        assert native in str(unknown.value)
    assert "--flavor" in str(unknown.value)
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ArtifactError, match="is not a readable joblib/pickle model file"):
        save_model_file(tmp_path / "broken.pkl", tmp_path / "a")
    assert not (tmp_path / "a").exists()
