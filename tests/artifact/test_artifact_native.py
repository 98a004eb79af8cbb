"""Native-format flavors: XGBoost, LightGBM, CatBoost and statsmodels models are saved
in their library's own format, read back by that library, and served by the runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.artifact import load_model, save_model, save_model_file
from slml.errors import ArtifactError, UnsupportedModel

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
cb = pytest.importorskip("catboost")
sm = pytest.importorskip("statsmodels.api")
pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(0)
X = RNG.random((60, 3))
Y = (X[:, 0] > 0.5).astype(int)
FRAME = pd.DataFrame(X, columns=["age", "income", "score"])


def _manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "slml-model.json").read_text())


def _serve(path: Path, rows: Any) -> list[Any]:
    return load_model(path).predict(np.asarray(rows).tolist())


def test_xgboost_booster_is_saved_as_json_with_named_schema(tmp_path: Path) -> None:
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(FRAME, label=Y), 3)
    info = save_model(booster, tmp_path / "xgb")
    assert info.flavor == "xgboost"
    assert sorted(info.manifest["files"]) == ["model/model.json"]
    assert "learner" in json.loads((info.path / "model/model.json").read_text())
    assert info.manifest["signature"]["inputs"] == {
        "kind": "tensor", "dtype": "float64", "shape": [-1, 3],
        "names": ["age", "income", "score"],
    }  # fmt: skip
    assert [r.split("==")[0] for r in info.manifest["requirements"]] == ["xgboost", "numpy"]
    assert not (info.path / "model" / "code").exists()  # never a copy of xgboost itself
    expected = booster.inplace_predict(X[:4])
    assert np.allclose(_serve(info.path, X[:4]), expected)
    by_name = load_model(info.path).predict([{"age": 0.9, "income": 0.1, "score": 0.5}])
    assert np.allclose(by_name, booster.inplace_predict(np.array([[0.9, 0.1, 0.5]])))


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_files_and_wrappers(tmp_path: Path, suffix: str) -> None:
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(X, label=Y), 3)
    booster.save_model(str(tmp_path / f"booster{suffix}"))
    info = save_model_file(tmp_path / f"booster{suffix}", tmp_path / "b", sample_input=X[:3])
    assert info.flavor == "xgboost" and info.manifest["flavor_options"]["model_class"] is None
    assert np.allclose(_serve(info.path, X[:3]), booster.inplace_predict(X[:3]))
    clf = xgb.XGBClassifier(n_estimators=3).fit(X, Y)
    clf.save_model(str(tmp_path / f"clf{suffix}"))
    wrapped = save_model_file(tmp_path / f"clf{suffix}", tmp_path / "c", sample_input=X[:3])
    assert wrapped.manifest["flavor_options"]["model_class"] == "XGBClassifier"
    assert _serve(wrapped.path, X[:5]) == clf.predict(X[:5]).tolist()


def test_xgboost_wrapper_pickled_or_native(tmp_path: Path) -> None:
    clf = xgb.XGBClassifier(n_estimators=3).fit(X, Y)
    pickled = save_model(clf, tmp_path / "p", sample_input=X[:3])
    native = save_model(clf, tmp_path / "n", sample_input=X[:3], flavor="xgboost")
    assert (pickled.flavor, native.flavor) == ("sklearn", "xgboost")
    assert pickled.manifest["framework"]["name"] == native.manifest["framework"]["name"]
    assert _serve(pickled.path, X[:6]) == _serve(native.path, X[:6]) == clf.predict(X[:6]).tolist()


def test_lightgbm_booster_and_wrapper(tmp_path: Path) -> None:
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(FRAME, label=Y), 3)
    booster.save_model(str(tmp_path / "model.txt"))
    info = save_model_file(tmp_path / "model.txt", tmp_path / "b")
    assert info.flavor == "lightgbm"
    assert info.manifest["signature"]["inputs"]["names"] == ["age", "income", "score"]
    assert (info.path / "model/model.txt").read_text().startswith("tree")
    assert np.allclose(_serve(info.path, X[:3]), booster.predict(X[:3]))
    clf = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, np.where(Y, "yes", "no"))
    native = save_model(clf, tmp_path / "w", sample_input=X[:3], flavor="lightgbm")
    assert native.manifest["flavor_options"]["classes"] == ["no", "yes"]
    assert _serve(native.path, X[:6]) == clf.predict(X[:6]).tolist()
    proba = save_model(clf, tmp_path / "pp", flavor="lightgbm", method="predict_proba")
    assert np.allclose(_serve(proba.path, X[:3]), clf.predict_proba(X[:3]))


def test_catboost_model_and_cbm_file(tmp_path: Path) -> None:
    clf = cb.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False)
    clf.fit(FRAME, Y)
    info = save_model(clf, tmp_path / "c", sample_input=FRAME.head(3))
    assert info.flavor == "catboost"
    assert info.manifest["flavor_options"]["model_class"] == "CatBoostClassifier"
    assert (info.path / "model/model.cbm").read_bytes()[:4] == b"CBM1"
    assert _serve(info.path, X[:6]) == clf.predict(FRAME.head(6)).tolist()
    reg = cb.CatBoostRegressor(iterations=5, verbose=0, allow_writing_files=False).fit(X, Y)
    reg.save_model(str(tmp_path / "reg.cbm"))
    from_file = save_model_file(tmp_path / "reg.cbm", tmp_path / "r")
    assert from_file.manifest["flavor_options"]["model_class"] == "CatBoostRegressor"
    assert from_file.manifest["signature"]["inputs"]["shape"] == [-1, 3]
    assert np.allclose(_serve(from_file.path, X[:3]), reg.predict(X[:3]))


def test_statsmodels_results_array_and_formula(tmp_path: Path) -> None:
    import statsmodels.formula.api as smf

    exog = sm.add_constant(X)
    results = sm.OLS(Y, exog).fit()
    info = save_model(results, tmp_path / "ols", sample_input=exog[:3])
    assert info.flavor == "statsmodels"
    assert info.manifest["requirements"][0].startswith("statsmodels==")
    assert np.allclose(_serve(info.path, exog[:3]), results.predict(exog[:3]))
    results.save(str(tmp_path / "ols.pickle"))
    assert save_model_file(tmp_path / "ols.pickle", tmp_path / "f").flavor == "statsmodels"

    formula = smf.logit("y ~ age + income", FRAME.assign(y=Y)).fit(disp=0)
    with pytest.raises(ArtifactError, match="formula") as refused:
        save_model(formula, tmp_path / "no-sample")
    assert "DataFrame" in str(refused.value)
    named = save_model(formula, tmp_path / "logit", sample_input=FRAME.head(3))
    assert named.manifest["signature"]["inputs"]["kind"] == "columns"
    rows = FRAME.head(4).to_dict(orient="records")
    assert np.allclose(load_model(named.path).predict(rows), formula.predict(FRAME.head(4)))


def test_wrong_native_files_say_what_the_framework_expects(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"layers": 3}')
    with pytest.raises(ArtifactError, match="not an XGBoost model") as info:
        save_model_file(tmp_path / "config.json", tmp_path / "a")
    assert "--flavor" in (info.value.hint or "")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ArtifactError, match="not a LightGBM model"):
        save_model_file(tmp_path / "notes.txt", tmp_path / "a")
    (tmp_path / "x.cbm").write_bytes(b"nope")
    with pytest.raises(ArtifactError, match="CBM1"):
        save_model_file(tmp_path / "x.cbm", tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_booster_never_falls_to_the_python_flavor(tmp_path: Path) -> None:
    booster = xgb.train({}, xgb.DMatrix(X, label=Y), 2)
    with pytest.raises(UnsupportedModel, match="cannot be saved with flavor 'sklearn'"):
        save_model(booster, tmp_path / "s", flavor="sklearn")
    with pytest.raises(UnsupportedModel, match="installed package xgboost") as info:
        save_model(booster, tmp_path / "p", flavor="python")
    assert "flavor 'xgboost'" in (info.value.hint or "")
    assert not (tmp_path / "p").exists()
