"""A LightGBM model's Lambda bundle ships libgomp.so.1 (Lambda's base image has none,
LightGBM's wheel does not carry it: scikit-learn's copy, from the layer or, without
scikit-learn, from its wheel) and answers under the harness."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from containers.events import PAYLOAD, http_v2
from containers.images.recipes import LAMBDA_312
from containers.lambda_harness import run_lambda
from containers.test_lambda_zip import MEMORY, build, laid_out
from slml.bundle.lambda_bundle import HANDLER

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]
lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def lightgbm_artifact(tmp_path_factory) -> Path:
    from sklearn.datasets import load_iris

    import slml

    data = load_iris()
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(data.data, data.target)
    dest = tmp_path_factory.mktemp("lightgbm") / "iris-lgbm"
    slml.save_model(model, dest, sample_input=data.data[:5])
    return dest


def test_lightgbm_bundle_ships_libgomp_and_answers_under_awslambdaric(
    engine, base_image, bundle_cache, lightgbm_artifact, tmp_path
):
    image = base_image(LAMBDA_312)
    bundle = build(lightgbm_artifact, tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    with zipfile.ZipFile(bundle.files["layer"]) as zf:
        assert "lib/libgomp.so.1" in zf.namelist()
    assert any("shipped libgomp.so.1" in note and "lightgbm" in note for note in bundle.notes)
    task, opt = laid_out(bundle, tmp_path)
    with run_lambda(engine, image=image, runtime="python3.12", memory=MEMORY, task=task, opt=opt,
                    handler=HANDLER) as fn:  # fmt: skip
        result = fn.invoke(http_v2("POST", "/predict", PAYLOAD))
        assert result.kind == "response", (result.body, fn.logs()[-2000:])
        assert result.body["statusCode"] == 200, result.body
        assert json.loads(result.body["body"])["predictions"] == [0, 2]


def test_without_scikit_learn_libgomp_comes_from_its_wheel_and_the_bundle_answers(
    engine, base_image, lightgbm_artifact, bundle_cache, tmp_path
):
    manifest_path = lightgbm_artifact / "slml-model.json"
    artifact = tmp_path / "no-sklearn"
    import shutil

    shutil.copytree(lightgbm_artifact, artifact)
    manifest = json.loads(manifest_path.read_text())
    # LightGBM and its own dependencies only (as a native model.txt needs): no
    # scikit-learn wheel in the layer, so no vendored libgomp there
    manifest["requirements"] = [r for r in manifest["requirements"]
                                if not r.startswith(("scikit-learn", "joblib"))]  # fmt: skip
    (artifact / "slml-model.json").write_text(json.dumps(manifest))
    bundle = build(artifact, tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64", bytecode="never")  # fmt: skip
    assert any("libgomp.so.1" in n and "scikit-learn==" in n for n in bundle.notes)
    assert not list(bundle.files["layer_dir"].glob("scikit_learn*"))
    with zipfile.ZipFile(bundle.files["layer"]) as zf:
        assert "lib/libgomp.so.1" in zf.namelist()
