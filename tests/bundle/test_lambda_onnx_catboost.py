"""CatBoost in Lambda zips: its library alone (268 MB) is over the 250 MB limit, so the
build exports the model to ONNX with CatBoost's own writer, checks it on the saved
sample, and serves the export from a zip without catboost; a model CatBoost cannot
export says why and takes the image path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_lambda_bundle import build

from slml.artifact import load_model, save_model
from slml.artifact.store import verified_manifest
from slml.bundle.lambda_bundle import delivery
from slml.bundle.lambda_delivery import UNZIPPED_LIMIT
from slml.bundle.onnx_catboost import RTOL
from slml.bundle.onnx_export import export_for_function
from slml.runtime.manifest import read_manifest

cb = pytest.importorskip("catboost")
pytestmark = pytest.mark.slow
RNG = np.random.default_rng(3)
X = RNG.random((60, 4))
FIT = {"iterations": 20, "verbose": 0, "allow_writing_files": False}


def models() -> dict[str, tuple[object, str | None]]:
    three = np.array(["low", "mid", "high"])[(X[:, 0] * 3).astype(int)]
    return {
        "binary labels": (cb.CatBoostClassifier(**FIT).fit(X, (X[:, 0] > .5).astype(int)), None),
        "string labels, three classes": (cb.CatBoostClassifier(**FIT).fit(X, three), None),
        "probabilities": (cb.CatBoostClassifier(**FIT).fit(X, three), "predict_proba"),
        "regression": (cb.CatBoostRegressor(**FIT).fit(X, X[:, 0] * 100 - 7), None),
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("name", list(models()))
def test_the_export_answers_what_the_model_answers(tmp_path: Path, name: str) -> None:
    model, method = models()[name]
    artifact = save_model(model, tmp_path / "cat", sample_input=X[:10], method=method).path
    exported = export_for_function(artifact, verified_manifest(artifact), tmp_path / "out")
    assert exported.artifact is not None, exported.notes
    assert "served with onnxruntime, no catboost" in exported.notes[0]
    served = read_manifest(exported.artifact)
    assert served["flavor"] == "onnx" and served["exported_from"]["flavor"] == "catboost"
    assert not any(r.startswith("catboost") for r in served["requirements"])
    rows = {"instances": X[20:40].tolist()}  # rows the parity check did not see
    want, got = load_model(artifact).predict(rows), load_model(exported.artifact).predict(rows)
    if name == "regression" or method == "predict_proba":
        np.testing.assert_allclose(got, want, rtol=RTOL)
    else:
        assert got == want and len(want) == 20  # the model's labels
        assert not any(isinstance(label, list) for label in want)  # one per row, flat


def test_a_model_catboost_cannot_export_says_why(tmp_path: Path) -> None:
    booleans = cb.CatBoostClassifier(**FIT).fit(X, X[:, 0] > 0.5)
    artifact = save_model(booleans, tmp_path / "bool", sample_input=X[:10]).path
    exported = export_for_function(artifact, verified_manifest(artifact), tmp_path / "out")
    assert exported.artifact is None
    assert exported.notes[0].startswith("no ONNX export: CatBoost cannot export this model")


def test_categorical_features_and_a_missing_sample_say_why(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": X[:, 0], "colour": np.where(X[:, 1] > .5, "red", "blue")})
    categorical = cb.CatBoostClassifier(**FIT, cat_features=["colour"]).fit(frame, X[:, 2] > .5)
    artifact = save_model(categorical, tmp_path / "cat", sample_input=frame[:5]).path
    notes = export_for_function(artifact, verified_manifest(artifact), tmp_path / "o1").notes
    assert "no saved sample" in notes[0]  # a sample with strings is not kept as numbers
    plain = save_model(models()["regression"][0], tmp_path / "plain").path
    notes = export_for_function(plain, verified_manifest(plain), tmp_path / "o2").notes
    assert notes[0].startswith("no ONNX export: the artifact has no saved sample")


def test_the_lambda_zip_holds_the_export_without_catboost(tmp_path: Path, cache: Path) -> None:
    model, _ = models()["string labels, three classes"]
    artifact = save_model(model, tmp_path / "cat", sample_input=X[:10]).path
    bundle = build(artifact, tmp_path / "out", cache, bytecode="never")
    assert delivery(bundle) in ("direct", "s3") and bundle.size.unzipped < UNZIPPED_LIMIT
    names = {p.name.split("-")[0].lower() for p in bundle.files["layer_dir"].glob("*.dist-info")}
    assert {"onnxruntime", "numpy"} <= names and "catboost" not in names
    print(f"catboost lambda zip: {bundle.size.unzipped / 2**20:.1f} MB unzipped")
