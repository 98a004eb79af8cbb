"""Per framework, ``slml build --provider aws`` (the Lambda builder, host platform so
the handler runs here) yields either a zip under 250 MB unzipped that answers a Lambda
event like the original model, or a Lambda container image with its reason in the
build notes: TorchScript, torch.export, Keras 3 (torch backend), a transformers
text-classification pipeline, an MLflow sklearn model and an MLflow pyfunc model."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mlflow")

import torch
from test_lambda_bundle import build, predict_event
from test_lambda_onnx_export import answer_isolated

from slml.artifact import save_model
from slml.artifact.mlflow_source import save_mlflow_model
from slml.bundle.lambda_delivery import UNZIPPED_LIMIT
from slml.bundle.lock import Target
from slml.bundle.onnx_export import ATOL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "mlflow"))
from torch_nets import Net, net_file  # noqa: E402

MB = 1024 * 1024
ROWS = np.random.default_rng(4).normal(size=(3, 4)).astype("float32")
ADDER = Path(__file__).parents[1] / "fixtures" / "mlflow" / "adder_model.py"
Made = tuple[Path, list[Any], Callable[[Any], bool]]


def close(want: Any) -> Callable[[Any], bool]:
    return lambda got: bool(np.max(np.abs(np.asarray(got) - np.asarray(want))) <= ATOL)


def torch_model(folder: Path, fmt: str) -> Made:
    net = Net().eval()
    with torch.inference_mode():
        want = net(torch.from_numpy(ROWS)).numpy()
    path = net_file(folder, fmt, ROWS)
    return save_model(path, folder / "art", sample_input=ROWS).path, ROWS.tolist(), close(want)


def keras_model(folder: Path) -> Made:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    if keras.backend.backend() != "torch":
        pytest.skip("keras runs another backend in this process")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    want = model.predict(ROWS, verbose=0)
    return save_model(model, folder / "art", sample_input=ROWS).path, ROWS.tolist(), close(want)


def transformers_model(folder: Path) -> Made:
    pytest.importorskip("transformers")
    import hf_tiny

    pipe = hf_tiny.pipeline("text-classification")
    texts = ["good film", "terrible plot"]
    labels = [w["label"] for w in pipe(texts)]
    path = save_model(pipe, folder / "art", sample_input=hf_tiny.SAMPLE).path
    return path, texts, lambda got: [g["label"] for g in got] == labels


def mlflow_sklearn(folder: Path) -> Made:
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.sklearn.save_model(clf, folder / "mlf", input_example=X[:3])
    path = save_mlflow_model(folder / "mlf", folder / "art", check=False).path
    return path, X[:3].tolist(), lambda got: got == clf.predict(X[:3]).tolist()


def mlflow_pyfunc(folder: Path) -> Made:
    import mlflow.pyfunc
    import pandas as pd

    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    mlflow.pyfunc.save_model(folder / "mlf", python_model=str(ADDER), input_example=example)
    path = save_mlflow_model(folder / "mlf", folder / "art", check=False).path
    return path, [{"a": 1.0, "b": 2.0}], lambda got: got == [3.5]


MAKERS: dict[str, Callable[[Path], Made]] = {
    "torchscript": lambda f: torch_model(f, "pt"), "torch.export": lambda f: torch_model(f, "pt2"),
    "keras": keras_model, "transformers": transformers_model,
    "mlflow-sklearn": mlflow_sklearn, "mlflow-pyfunc": mlflow_pyfunc,
}  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("framework", list(MAKERS))
def test_a_zip_that_answers_or_an_image_with_its_reason(
    framework: str, tmp_path: Path, cache: Path
) -> None:
    artifact, rows, check = MAKERS[framework](tmp_path)
    bundle = build(artifact, tmp_path / "out", cache, target=Target.here("aws-host"))
    # the default aws.large_bundle (fail): the image path only where no zip can hold it
    size = f"{bundle.size.unzipped / MB:.1f} MB unzipped"
    if "image" in bundle.files:
        reason = [n for n in bundle.notes if "container image" in n] + [bundle.outputs.reason]
        assert any("250 MB" in r for r in reason), bundle.notes
        print(f"{framework}: Lambda container image ({size}); {reason}")
        return
    assert bundle.size.unzipped < UNZIPPED_LIMIT
    done = answer_isolated(bundle, predict_event(rows))
    assert done.returncode == 0, done.stderr[-2000:]
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    got = json.loads(response["body"])["predictions"]
    assert check(got), (framework, got)
    parity = [n for n in bundle.notes if n.startswith("exported to ONNX")]
    print(f"{framework}: zip, {size}, {bundle.size.zipped / MB:.1f} MB zipped; {parity}")
