"""torch programs in Lambda zips: a TorchScript .pt and a torch.export .pt2 artifact are
exported to ONNX at build time (torch alone is ~750 MB), parity-checked on the saved
sample, and served by a host-built bundle's handler without torch."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
from test_lambda_bundle import build, predict_event
from test_lambda_onnx_export import answer_isolated

from slml.artifact import save_model
from slml.bundle.lambda_delivery import UNZIPPED_LIMIT
from slml.bundle.lock import Target
from slml.bundle.onnx_export import ATOL, export_for_function
from slml.runtime.manifest import read_manifest

pytestmark = pytest.mark.slow
sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "mlflow"))
from torch_nets import Net, net_file  # noqa: E402

MB = 1024 * 1024
ROWS = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")


def tiny_file(folder: Path, fmt: str) -> Path:
    return net_file(folder, fmt, ROWS)


def expected(rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return Net().eval()(torch.from_numpy(rows)).numpy()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module", params=["pt", "pt2"])
def artifact(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    return save_model(tiny_file(folder, request.param), folder / "artifact",
                      sample_input=ROWS).path  # fmt: skip


def test_the_zip_serves_the_onnx_export_without_torch(artifact, tmp_path, cache):
    bundle = build(artifact, tmp_path / "out", cache, target=Target.here("aws-host"))
    assert bundle.size.unzipped < UNZIPPED_LIMIT
    assert "image" not in bundle.files
    names = {p.name.split("-")[0].lower() for p in bundle.files["layer_dir"].glob("*.dist-info")}
    assert {"onnxruntime", "numpy"} <= names and "torch" not in names
    note = next(n for n in bundle.notes if n.startswith("exported to ONNX"))
    assert "max abs diff" in note and f"allowed {ATOL}" in note
    served = read_manifest(bundle.files["function"] / "model")
    assert served["flavor"] == "onnx" and served["exported_from"]["flavor"] == "torch"
    parity = served["exported_from"]["parity"]
    assert parity["max_abs_diff"] <= ATOL and parity["rows"] == len(ROWS)
    rows = np.random.default_rng(9).normal(size=(7, 4)).astype("float32")
    done = answer_isolated(bundle, predict_event(rows.tolist()))
    assert done.returncode == 0, done.stderr[-2000:]
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    got = np.asarray(json.loads(response["body"])["predictions"])
    assert np.max(np.abs(got - expected(rows))) <= ATOL
    print(f"{artifact.parent.name}: {bundle.size.unzipped / MB:.1f} MB unzipped, "
          f"{bundle.size.zipped / MB:.1f} MB zipped; parity {parity}")


def test_no_sample_means_no_export_and_the_reason(tmp_path):
    path = save_model(tiny_file(tmp_path, "pt"), tmp_path / "bare").path
    exported = export_for_function(path, read_manifest(path), tmp_path / "out")
    assert exported.artifact is None
    assert exported.notes[0].startswith("no ONNX export: the artifact has no saved sample")
