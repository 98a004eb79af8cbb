"""sklearn flavor: save → manifest → load through the runtime → predict."""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from artifact_helpers import read_manifest

import slml
from slml.artifact import load_model, save_model
from slml.artifact import requirements as reqs
from slml.errors import ArtifactError, UnsupportedModel
from slml.runtime.manifest import artifact_digest, hash_tree


def test_round_trip_numpy_sample(tmp_path: Path, iris: Any, iris_clf: Any) -> None:
    X, _ = iris
    info = save_model(iris_clf, tmp_path / "iris", sample_input=X[:5])
    manifest = read_manifest(info.path)
    assert info.flavor == manifest["flavor"] == "sklearn"
    assert manifest["framework"] == {
        "name": "scikit-learn",
        "version": metadata.version("scikit-learn"),
    }
    assert manifest["signature"] == {
        "inputs": {"kind": "tensor", "dtype": "float64", "shape": [-1, 4]},
        "outputs": {"kind": "tensor", "dtype": "int64", "shape": [-1]},
    }
    assert manifest["flavor_options"] == {"file": "model/model.joblib", "method": "predict"}
    assert manifest["files"] == hash_tree(info.path)
    assert info.sha256 == artifact_digest(manifest)
    assert (info.name, info.version, manifest["format"]) == ("iris", "1", 1)
    loaded = load_model(info.path)
    assert loaded.predict(X[:10].tolist()) == iris_clf.predict(X[:10]).tolist()


def test_public_api_is_reexported_on_slml(tmp_path: Path, iris: Any, iris_clf: Any) -> None:
    info = slml.save_model(iris_clf, tmp_path / "m", sample_input=iris[0][:3].tolist())
    assert slml.load_model(info.path).predict([[5.1, 3.5, 1.4, 0.2]]) == [0]


def test_requirements_are_pinned_to_installed_versions(
    tmp_path: Path, iris: Any, iris_clf: Any
) -> None:
    manifest = save_model(iris_clf, tmp_path / "m").manifest
    pins = dict(r.split("==") for r in manifest["requirements"])
    assert list(pins)[:4] == ["scikit-learn", "numpy", "scipy", "joblib"]
    for dist, version in pins.items():
        assert metadata.version(dist) == version
    assert manifest["signature"] is None  # no sample, no signature


def test_requirements_override_replaces_by_name_and_appends(tmp_path: Path, iris_clf: Any) -> None:
    manifest = save_model(
        iris_clf, tmp_path / "m", requirements=["Scikit_Learn>=1.3", "extra-thing==2.0"]
    ).manifest
    assert manifest["requirements"][0] == "Scikit_Learn>=1.3"
    assert manifest["requirements"][-1] == "extra-thing==2.0"
    assert sum("scikit" in r.lower() for r in manifest["requirements"]) == 1
    with pytest.raises(ArtifactError, match="list of requirement strings"):
        save_model(iris_clf, tmp_path / "n", requirements="numpy")
    with pytest.raises(ArtifactError, match="not a valid requirement"):
        save_model(iris_clf, tmp_path / "n", requirements=["==1.0"])


def test_dataframe_sample_gives_columns_and_pandas(tmp_path: Path, iris: Any) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = DecisionTreeClassifier(random_state=0).fit(frame, y)
    info = save_model(model, tmp_path / "df", sample_input=frame.head())
    columns = info.manifest["signature"]["inputs"]["columns"]
    assert [c["name"] for c in columns] == ["sl", "sw", "pl", "pw"]
    assert {c["dtype"] for c in columns} == {"float64"}
    assert f"pandas=={metadata.version('pandas')}" in info.manifest["requirements"]
    assert load_model(info.path).predict({"inputs": frame.head(3).to_dict("list")}) == list(
        model.predict(frame.head(3))
    )


def test_pipeline_and_regressor_outputs(tmp_path: Path, iris: Any) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y.astype(float))
    info = save_model(model, tmp_path / "ridge", sample_input=X[:4])
    assert info.manifest["signature"]["outputs"] == {
        "kind": "tensor",
        "dtype": "float64",
        "shape": [-1],
    }
    got = load_model(info.path).predict(X[:4].tolist())
    assert np.allclose(got, model.predict(X[:4]))


def test_sample_that_the_model_cannot_predict_is_refused(tmp_path: Path, iris_clf: Any) -> None:
    with pytest.raises(ArtifactError, match="failed to predict on sample_input") as info:
        save_model(iris_clf, tmp_path / "m", sample_input=[[1.0, 2.0]])
    assert "features" in str(info.value)
    assert not (tmp_path / "m").exists()


def _double(x: Any) -> Any:
    return x * 2


def test_pickle_referring_to_unpackaged_code_is_refused(tmp_path: Path, iris: Any) -> None:
    """A FunctionTransformer of a function defined in this test module (no installed
    package provides it) could not be unpickled by the runtime."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    model = make_pipeline(FunctionTransformer(_double), LogisticRegression(max_iter=300))
    model.fit(X, y)
    with pytest.raises(ArtifactError, match="no installed package provides") as info:
        save_model(model, tmp_path / "m")
    assert __name__ in str(info.value) and "flavor='python'" in str(info.value)


@pytest.fixture
def fakeboost(tmp_path: Path) -> Any:
    """A real (minimal) installed distribution with an estimator, like xgboost's
    sklearn wrapper: package ``fakeboost`` from distribution ``fakeboost`` 1.2.3."""
    site = tmp_path / "site"
    (site / "fakeboost").mkdir(parents=True)
    (site / "fakeboost" / "__init__.py").write_text(
        "from sklearn.base import BaseEstimator, ClassifierMixin\n"
        "import numpy as np\n"
        "class FakeBoostClassifier(ClassifierMixin, BaseEstimator):\n"
        "    def fit(self, X, y):\n"
        "        self.classes_ = np.unique(y); self.mode_ = np.bincount(y).argmax()\n"
        "        return self\n"
        "    def predict(self, X):\n"
        "        return np.full(len(X), self.mode_)\n"
    )
    info = site / "fakeboost-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeboost\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("fakeboost\n")
    sys.path.insert(0, str(site))
    reqs._module_map.cache_clear()
    try:
        import fakeboost

        yield fakeboost
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("fakeboost", None)
        reqs._module_map.cache_clear()


def test_estimator_api_from_another_framework(tmp_path: Path, iris: Any, fakeboost: Any) -> None:
    X, y = iris
    model = fakeboost.FakeBoostClassifier().fit(X, y)
    info = save_model(model, tmp_path / "fb", sample_input=X[:3])
    assert info.flavor == "sklearn"
    assert info.manifest["framework"] == {"name": "fakeboost", "version": "1.2.3"}
    assert info.manifest["requirements"][:2] == [
        "fakeboost==1.2.3",
        f"scikit-learn=={metadata.version('scikit-learn')}",
    ]
    assert load_model(info.path).predict(X[:2].tolist()) == [0, 0]


class _NotAModel:
    pass


def test_unsupported_object_lists_what_is_supported(tmp_path: Path) -> None:
    for thing in (_NotAModel(), {"a": 1}, 42, LogisticRegressionClass()):
        with pytest.raises(UnsupportedModel) as info:
            save_model(thing, tmp_path / "m")
        text = str(info.value)
        assert "scikit-learn" in text and "ONNX" in text and "predict(inputs)" in text
    assert not (tmp_path / "m").exists()


def LogisticRegressionClass() -> type:
    """A class (not an instance) is not a model."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression


def test_explicit_flavor(tmp_path: Path, iris: Any, iris_clf: Any) -> None:
    with pytest.raises(UnsupportedModel, match="cannot be saved with flavor 'onnx'"):
        save_model(iris_clf, tmp_path / "a", flavor="onnx")
    with pytest.raises(ArtifactError, match="unknown flavor 'tensorflow'"):
        save_model(iris_clf, tmp_path / "b", flavor="tensorflow")
    info = save_model(iris_clf, tmp_path / "c", flavor="sklearn", sample_input=iris[0][:2])
    assert info.flavor == "sklearn"
