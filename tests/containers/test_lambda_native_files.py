"""Native model files (`slml save FILE`) as Lambda zips under AWS's Runtime Interface
Client (python3.12, x86_64): an XGBoost Booster as .json and as .ubj, a LightGBM
model.txt and a CatBoost .cbm (exported to ONNX at build time: its library alone is over
250 MB) each build to a zip under 250 MB unzipped that answers what the model answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from containers.conftest import record
from containers.images.recipes import LAMBDA_312
from containers.test_lambda_frameworks import answer
from containers.test_lambda_zip import build
from slml.bundle.lambda_bundle import UNZIPPED_LIMIT, delivery

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]
MB = 1024 * 1024
RNG = np.random.default_rng(5)
X = RNG.random((80, 4))
Y = (X[:, 0] + X[:, 3] > 1).astype(int)


def native_file(kind: str, folder: Path) -> tuple[Path, list]:
    """(the model's own file, what the model answers for X[:6])."""
    if kind in ("xgboost.json", "xgboost.ubj"):
        xgb = pytest.importorskip("xgboost")
        booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                            xgb.DMatrix(X, label=Y), num_boost_round=8)  # fmt: skip
        path = folder / f"model.{kind.split('.')[1]}"
        booster.save_model(str(path))
        return path, booster.predict(xgb.DMatrix(X[:6])).tolist()
    if kind == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        booster = lgb.train({"objective": "binary", "verbose": -1},
                            lgb.Dataset(X, label=Y), num_boost_round=8)  # fmt: skip
        path = folder / "model.txt"
        booster.save_model(str(path))
        return path, booster.predict(X[:6]).tolist()
    cb = pytest.importorskip("catboost")
    model = cb.CatBoostClassifier(iterations=10, verbose=0, allow_writing_files=False).fit(X, Y)
    path = folder / "model.cbm"
    model.save_model(str(path))
    return path, model.predict(X[:6]).tolist()


@pytest.mark.parametrize("kind", ["xgboost.json", "xgboost.ubj", "lightgbm", "catboost"])
def test_a_native_file_zip_answers_what_the_model_answers(
    engine, base_image, bundle_cache, tmp_path, kind
):
    from slml.artifact.model_file import save_model_file

    path, want = native_file(kind, tmp_path)
    artifact = save_model_file(path, tmp_path / "art", sample_input=X[:10]).path
    bundle = build(artifact, tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    assert delivery(bundle) in ("direct", "s3") and bundle.size.unzipped < UNZIPPED_LIMIT
    got, init = answer(engine, base_image(LAMBDA_312), bundle, tmp_path,
                       {"instances": X[:6].tolist()})  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5)
    record(f"{kind} file lambda zip", {
        "unzipped_mb": round(bundle.size.unzipped / MB, 1),
        "zipped_mb": round(bundle.size.zipped / MB, 1), "init_s": round(init, 2),
        "onnx_export": any(n.startswith("exported to ONNX") for n in bundle.notes),
    })  # fmt: skip
