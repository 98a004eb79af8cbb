"""Framework bundles under AWS's Runtime Interface Client (python3.12, x86_64):

- a transformers text-classification pipeline, exported to ONNX at build time: a zip
  under 250 MB (onnxruntime + tokenizers, no torch) that answers strings with the
  pipeline's labels and scores;
- a TorchScript file, a torch.export program and a Keras 3 model (torch backend), each
  exported to ONNX at build time: a zip (onnxruntime + numpy, no torch) whose answers
  are the original model's within the export's tolerance;
- an XGBClassifier, built from xgboost-cpu (no 468 MB NCCL), as a zip;
- a CatBoost classifier, whose own library is over 250 MB, exported to ONNX at build
  time: a zip without catboost that answers the model's labels; one CatBoost cannot
  export takes the image path and says why (the image itself is built by
  test_lambda_image.py's recipe)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from containers.conftest import record
from containers.events import http_v2
from containers.images.recipes import LAMBDA_312
from containers.lambda_harness import run_lambda
from containers.test_lambda_zip import MEMORY, build, laid_out
from slml.bundle.lambda_bundle import HANDLER, UNZIPPED_LIMIT, delivery

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]
MB = 1024 * 1024
RNG = np.random.default_rng(3)
X = RNG.random((60, 4))
Y = (X[:, 0] + X[:, 2] > 1).astype(int)


def answer(engine, image: str, bundle, tmp_path: Path, payload: dict) -> tuple[list, float]:
    """The predictions of the laid-out zip bundle under the harness, and its init time."""
    task, opt = laid_out(bundle, tmp_path)
    with run_lambda(engine, image=image, runtime="python3.12", memory=MEMORY, task=task, opt=opt,
                    handler=HANDLER) as fn:  # fmt: skip
        result = fn.invoke(http_v2("POST", "/predict", json.dumps(payload)))
        assert result.kind == "response", (result.body, fn.logs()[-2000:])
        assert result.body["statusCode"] == 200, result.body
        return json.loads(result.body["body"])["predictions"], fn.init_seconds


def test_transformers_classifier_zip_is_an_onnx_export_that_answers(
    engine, base_image, bundle_cache, tmp_path
):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import hf_tiny

    import slml

    pipe = hf_tiny.pipeline("text-classification")
    artifact = tmp_path / "hf"
    slml.save_model(pipe, artifact, sample_input=hf_tiny.SAMPLE)
    texts = ["good film", "terrible plot on a bad day", "great acting"]
    want = pipe(texts)
    started = time.monotonic()
    bundle = build(artifact, tmp_path / "out", bundle_cache, runtime="python3.12", arch="x86_64")
    build_s = time.monotonic() - started
    assert delivery(bundle) in ("direct", "s3") and bundle.size.unzipped < UNZIPPED_LIMIT
    note = next(n for n in bundle.notes if n.startswith("exported to ONNX"))
    got, init = answer(engine, base_image(LAMBDA_312), bundle, tmp_path, {"instances": texts})
    assert [g["label"] for g in got] == [w["label"] for w in want]
    diff = max(abs(g["score"] - w["score"]) for g, w in zip(got, want, strict=True))
    assert diff < 1e-5
    record("transformers text-classification lambda zip", {
        "unzipped_mb": round(bundle.size.unzipped / MB, 1),
        "zipped_mb": round(bundle.size.zipped / MB, 1), "init_s": round(init, 2),
        "build_s": round(build_s, 1), "parity": note, "score_max_abs_diff_in_lambda": diff,
    })  # fmt: skip


def _deep_model(kind: str, folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """(artifact, rows, the original model's outputs) for a TorchScript file, a
    torch.export program or a Keras 3 model on the torch backend."""
    import os
    import sys

    import torch

    import slml

    rows = RNG.normal(size=(3, 4)).astype("float32")
    if kind == "keras":
        os.environ["KERAS_BACKEND"] = "torch"
        import keras

        if keras.backend.backend() != "torch":
            pytest.skip("keras runs another backend in this process")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        want = np.asarray(model.predict(rows, verbose=0))
        return slml.save_model(model, folder / "art", sample_input=rows).path, rows, want
    sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "mlflow"))
    from torch_nets import Net, net_file

    with torch.inference_mode():
        want = Net().eval()(torch.from_numpy(rows)).numpy()
    path = net_file(folder, "pt" if kind == "torchscript" else "pt2", rows)
    return slml.save_model(path, folder / "art", sample_input=rows).path, rows, want


@pytest.mark.parametrize("kind", ["torchscript", "torch.export", "keras"])
def test_a_deep_model_zip_is_an_onnx_export_that_answers(
    engine, base_image, bundle_cache, tmp_path, kind
):
    pytest.importorskip("torch")
    from slml.bundle.onnx_export import ATOL

    artifact, rows, want = _deep_model(kind, tmp_path)
    bundle = build(artifact, tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    assert delivery(bundle) in ("direct", "s3") and bundle.size.unzipped < UNZIPPED_LIMIT
    assert not list(bundle.files["layer_dir"].glob("torch-*.dist-info"))
    note = next(n for n in bundle.notes if n.startswith("exported to ONNX"))
    got, init = answer(engine, base_image(LAMBDA_312), bundle, tmp_path,
                       {"instances": rows.tolist()})  # fmt: skip
    diff = float(np.max(np.abs(np.asarray(got, dtype="float64") - want)))
    assert diff <= ATOL, (kind, got, want.tolist())
    record(f"{kind} lambda zip", {
        "artifact_kb": round(sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
                             / 1024, 1),
        "unzipped_mb": round(bundle.size.unzipped / MB, 1),
        "zipped_mb": round(bundle.size.zipped / MB, 1), "init_s": round(init, 2),
        "parity": note, "max_abs_diff_in_lambda": diff,
    })  # fmt: skip


def test_xgboost_zip_is_built_from_xgboost_cpu_and_answers(
    engine, base_image, bundle_cache, tmp_path
):
    xgb = pytest.importorskip("xgboost")
    import slml

    model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, Y)
    slml.save_model(model, tmp_path / "xgb", sample_input=X[:5])
    bundle = build(tmp_path / "xgb", tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    layer = bundle.files["layer_dir"]
    assert list(layer.glob("xgboost_cpu-*.dist-info")) and not list(layer.glob("nvidia*"))
    assert bundle.size.unzipped < UNZIPPED_LIMIT
    got, init = answer(engine, base_image(LAMBDA_312), bundle, tmp_path,
                       {"instances": X[:4].tolist()})  # fmt: skip
    assert got == model.predict(X[:4]).tolist()
    record("xgboost lambda zip", {"unzipped_mb": round(bundle.size.unzipped / MB, 1),
                                  "init_s": round(init, 2)})  # fmt: skip


def test_catboost_zip_is_an_onnx_export_that_answers(engine, base_image, bundle_cache, tmp_path):
    cb = pytest.importorskip("catboost")
    import slml

    labels = np.array(["low", "mid", "high"])[(X[:, 1] * 3).astype(int)]
    model = cb.CatBoostClassifier(iterations=20, verbose=0, allow_writing_files=False)
    model.fit(X, labels)
    slml.save_model(model, tmp_path / "cat", sample_input=X[:10])
    bundle = build(tmp_path / "cat", tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    assert delivery(bundle) in ("direct", "s3") and bundle.size.unzipped < UNZIPPED_LIMIT
    assert not list(bundle.files["layer_dir"].glob("catboost-*.dist-info"))
    note = next(n for n in bundle.notes if n.startswith("exported to ONNX"))
    got, init = answer(engine, base_image(LAMBDA_312), bundle, tmp_path,
                       {"instances": X[30:40].tolist()})  # fmt: skip
    assert got == model.predict(X[30:40]).ravel().tolist()
    record("catboost lambda zip", {"unzipped_mb": round(bundle.size.unzipped / MB, 1),
                                   "zipped_mb": round(bundle.size.zipped / MB, 1),
                                   "init_s": round(init, 2), "parity": note})  # fmt: skip


def test_catboost_it_cannot_export_takes_the_image_path_and_says_why(bundle_cache, tmp_path):
    cb = pytest.importorskip("catboost")
    import slml

    model = cb.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False)
    model.fit(X, Y == 1)  # boolean labels: CatBoost's ONNX writer refuses them
    slml.save_model(model, tmp_path / "cat", sample_input=X[:5])
    bundle = build(tmp_path / "cat", tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64", bytecode="never")  # fmt: skip
    assert delivery(bundle) == "image"
    reason = next(n for n in bundle.notes if n.startswith("no Lambda zip can hold"))
    assert "CatBoost cannot export this model to ONNX" in reason
    assert (bundle.files["image"] / "Dockerfile").is_file()
    record("catboost lambda bundle", {"unzipped_mb": round(bundle.size.unzipped / MB, 1),
                                      "path": "image", "reason": reason})  # fmt: skip
