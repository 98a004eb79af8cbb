"""slml.yaml's serve-time ``method:``: SLML_METHOD in every target's env, applied by the
runtime loader, checked against the artifact's flavor at build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.artifact import load_model, save_model
from slml.artifact.unchecked import check_served_method
from slml.config import parse_config
from slml.errors import ArtifactError, ConfigError
from slml.runtime.manifest import MANIFEST_FILE
from slml.runtime.serve_method import ENV

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def iris_xy() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_the_runtime_serves_the_configured_method(
    tmp_path: Path, iris_xy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris_xy
    clf = LogisticRegression(max_iter=500).fit(X, y)
    info = save_model(clf, tmp_path / "m")
    assert load_model(info.path).classes is None
    monkeypatch.setenv(ENV, "predict_proba")
    served = load_model(info.path)
    assert np.allclose(served.predict(ROWS), clf.predict_proba(ROWS))
    assert served.classes == [0, 1, 2]
    assert served.manifest["flavor_options"]["method"] == "predict_proba"
    monkeypatch.setenv(ENV, "predict")  # back to predict: labels, and no classes
    info = save_model(clf, tmp_path / "p", method="predict_proba")
    assert load_model(info.path).predict(ROWS) == clf.predict(ROWS).tolist()
    assert load_model(info.path).classes is None


def test_a_model_without_the_method_fails_to_load_naming_it(
    tmp_path: Path, iris_xy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LinearRegression

    X, y = iris_xy
    info = save_model(LinearRegression().fit(X, y), tmp_path / "m")
    monkeypatch.setenv(ENV, "predict_proba")
    with pytest.raises(ArtifactError, match=r"LinearRegression.*no method 'predict_proba'"):
        load_model(info.path)


def test_a_flavor_that_serves_predict_only_is_refused_at_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = tmp_path / "m"  # an ONNX graph serves its outputs: no method to choose
    artifact.mkdir()
    manifest = {"format": 1, "name": "g", "version": "1", "flavor": "onnx", "files": {},
                "flavor_options": {"file": "model/model.onnx"}}  # fmt: skip
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="onnx flavor serves predict only") as caught:
        check_served_method(artifact, "predict_proba")
    assert "remove method:" in (caught.value.hint or "")
    check_served_method(artifact, "predict")  # always fine
    monkeypatch.setenv(ENV, "decision_function")
    with pytest.raises(ArtifactError, match="SLML_METHOD=decision_function"):
        load_model(artifact)


def test_config_puts_the_method_in_every_targets_env() -> None:
    from slml.bundle.served_env import served_env

    config = parse_config("name: abc\nmodel: m\nmethod: predict_proba\n", source="slml.yaml")
    for section in ("local", "aws", "sagemaker", "gcp", "azure"):
        assert served_env(config, section, None)[ENV] == "predict_proba"
    gcp = config.with_overrides(provider="gcp")
    assert served_env(gcp, "gcp", None)[ENV] == "predict_proba"
    plain = parse_config("name: abc\nmodel: m\n", source="slml.yaml")
    assert ENV not in served_env(plain, "aws", None)
    with pytest.raises(ConfigError, match="'fly' is not one of predict"):
        parse_config("name: abc\nmodel: m\nmethod: fly\n", source="slml.yaml")
    clash = "name: abc\nmodel: m\nmethod: predict_proba\naws:\n  env:\n    SLML_METHOD: predict\n"
    with pytest.raises(ConfigError, match=r"aws\.env sets SLML_METHOD='predict'"):
        parse_config(clash, source="slml.yaml")
