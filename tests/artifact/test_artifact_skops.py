"""serialization="skops": the sklearn flavor without pickle, loaded with only the types
the manifest declares trusted."""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Any

import pytest
from artifact_helpers import read_manifest

from slml.artifact import load_model, save_model
from slml.errors import ArtifactError
from slml.runtime.manifest import MANIFEST_FILE


@pytest.fixture(scope="module")
def hist_clf(iris: tuple[Any, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = iris
    return HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)


def test_skops_round_trip_declares_the_types_it_needs(
    tmp_path: Path, iris: Any, hist_clf: Any
) -> None:
    X, _ = iris
    info = save_model(hist_clf, tmp_path / "m", sample_input=X[:3], serialization="skops")
    options = read_manifest(info.path)["flavor_options"]
    assert options == {
        "file": "model/model.skops", "method": "predict", "serialization": "skops",
        "trusted_types": ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    }  # fmt: skip
    assert "model/model.skops" in info.files and "model/model.joblib" not in info.files
    assert any(r.startswith("skops==") for r in info.manifest["requirements"])
    assert load_model(info.path).predict(X[:20].tolist()) == hist_clf.predict(X[:20]).tolist()


def test_skops_passes_the_serve_check_in_a_clean_process(
    tmp_path: Path, iris: Any, iris_clf: Any
) -> None:
    X, _ = iris
    info = save_model(iris_clf, tmp_path / "m", sample_input=X[:3], serialization="skops",
                      check=True)  # fmt: skip
    assert read_manifest(info.path)["flavor_options"]["trusted_types"] == []


def test_a_type_the_manifest_does_not_trust_is_refused(
    tmp_path: Path, iris: Any, hist_clf: Any
) -> None:
    info = save_model(hist_clf, tmp_path / "m", serialization="skops")
    manifest = read_manifest(info.path)
    manifest["flavor_options"]["trusted_types"] = []
    (info.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"does not declare trusted: sklearn\.ensemble"):
        load_model(info.path)


def test_a_skops_manifest_without_trusted_types_is_refused(
    tmp_path: Path, iris_clf: Any
) -> None:
    info = save_model(iris_clf, tmp_path / "m", serialization="skops")
    manifest = read_manifest(info.path)
    del manifest["flavor_options"]["trusted_types"]
    (info.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"needs flavor_options\.trusted_types"):
        load_model(info.path)


def test_a_function_from_an_installed_module_is_declared(tmp_path: Path, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(X, y)
    info = save_model(model, tmp_path / "m", serialization="skops")
    assert read_manifest(info.path)["flavor_options"]["trusted_types"] == ["_operator.neg"]
    assert load_model(info.path).predict(X[:5].tolist()) == model.predict(X[:5]).tolist()


def test_a_lambda_is_refused_before_anything_is_written(tmp_path: Path, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    model = make_pipeline(FunctionTransformer(lambda a: a * 2), LogisticRegression()).fit(X, y)
    with pytest.raises(ArtifactError, match=r"Pipeline cannot be pickled.*lambda"):
        save_model(model, tmp_path / "m", serialization="skops")
    assert not (tmp_path / "m").exists()


def test_unknown_serialization_and_other_flavors_are_refused(
    tmp_path: Path, iris_clf: Any
) -> None:
    with pytest.raises(ArtifactError, match="serialization='cbor' is not one of joblib, skops"):
        save_model(iris_clf, tmp_path / "a", serialization="cbor")
    with pytest.raises(ArtifactError, match="cannot be combined"):
        save_model(iris_clf, tmp_path / "b", serialization="skops", export="onnx")
