"""Deep models in Lambda zips: a transformers pipeline (torch: ~750 MB) is exported to
ONNX at build time, parity-checked on its saved sample, and served from a zip with
onnxruntime and tokenizers only; models with no converter take the image path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import hf_tiny
from test_lambda_bundle import build, predict_event

from slml.artifact import save_model
from slml.bundle.lambda_delivery import UNZIPPED_LIMIT, unavoidable_image
from slml.bundle.lock import Target
from slml.bundle.onnx_export import ATOL, export_for_function
from slml.runtime.manifest import read_manifest

pytestmark = pytest.mark.slow
MB = 1024 * 1024


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    pipe = hf_tiny.pipeline("text-classification")
    out = tmp_path_factory.mktemp("hf") / "artifact"
    save_model(pipe, out, sample_input=hf_tiny.SAMPLE)
    return out, list(pipe(["good film", "terrible plot on a bad day", "great"]))


def test_lambda_bundle_serves_the_onnx_export_without_torch(classifier, tmp_path, cache):
    artifact, _ = classifier
    bundle = build(artifact, tmp_path / "out", cache, bytecode="never")
    assert bundle.size.unzipped < UNZIPPED_LIMIT
    names = {p.name.split("-")[0].lower() for p in bundle.files["layer_dir"].glob("*.dist-info")}
    assert {"onnxruntime", "tokenizers", "numpy"} <= names
    assert not {"torch", "transformers"} & names
    note = next(n for n in bundle.notes if n.startswith("exported to ONNX"))
    assert "labels equal" in note and "max abs diff" in note
    served = read_manifest(bundle.files["function"] / "model")
    assert served["flavor"] == "onnx"
    parity = served["exported_from"]["parity"]
    assert parity["max_abs_diff"] <= ATOL and parity["rows"] == len(hf_tiny.SAMPLE)
    assert bundle.model_sha256 == served["exported_from"]["sha256"]  # the model as saved
    print(f"lambda bundle {bundle.size.unzipped / MB:.1f} MB unzipped, "
          f"{bundle.size.zipped / MB:.1f} MB zipped; parity {parity}")


def test_the_host_bundle_answers_what_the_pipeline_answers(classifier, tmp_path, cache):
    artifact, want = classifier
    bundle = build(artifact, tmp_path / "out", cache, target=Target.here("aws-host"))
    event = predict_event(["good film", "terrible plot on a bad day", "great"])
    done = answer_isolated(bundle, event)
    assert done.returncode == 0, done.stderr[-2000:]
    response = json.loads(done.stdout.strip().splitlines()[-1])
    got = json.loads(response["body"])["predictions"]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert max(abs(g["score"] - w["score"]) for g, w in zip(got, want, strict=True)) < 1e-5


def answer_isolated(bundle, event: dict) -> subprocess.CompletedProcess:
    """The handler on ``event`` in ``python -I -S`` with only the bundle on sys.path;
    fails if torch or transformers got imported."""
    function, layer = str(bundle.files["function"]), str(bundle.files["layer_dir"])
    code = (
        "import sys, json\n"
        f"sys.path[:0] = [{function!r}, {layer!r}]\n"
        "import slml_handler\n"
        "response = slml_handler.handler(json.loads(sys.stdin.read()), None)\n"
        "assert not {'torch', 'transformers'} & set(sys.modules), 'torch was imported'\n"
        "print(json.dumps(response))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""),
           "SLML_MODEL_DIR": str(bundle.files["function"] / "model")}  # fmt: skip
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], input=json.dumps(event),
                          capture_output=True, text=True, env=env, timeout=120,
                          check=False)  # fmt: skip


def test_a_task_without_converter_says_why_and_needs_an_image(tmp_path):
    save_model(hf_tiny.pipeline("token-classification"), tmp_path / "tok",
               sample_input=hf_tiny.SAMPLE)  # fmt: skip
    manifest = read_manifest(tmp_path / "tok")
    exported = export_for_function(tmp_path / "tok", manifest, tmp_path / "out")
    assert exported.artifact is None
    assert "token-classification task has no ONNX converter" in exported.notes[0]
    reason = unavoidable_image(unzipped=800 * MB, largest=[("torch", 700 * MB)],
                               export_notes=exported.notes)  # fmt: skip
    assert reason is not None and reason.startswith("no ONNX export")


def test_image_is_unavoidable_only_when_no_zip_can_hold_the_model():
    assert unavoidable_image(unzipped=200 * MB, largest=[("catboost", 199 * MB)]) is None
    reason = unavoidable_image(unzipped=552 * MB, largest=[("catboost", 268 * MB),
                                                           ("pandas", 70 * MB)])  # fmt: skip
    assert reason == "catboost alone is 268.0 MB unzipped, over Lambda's 250 MB limit"
    # too large, but every package fits: a fix exists (CPU-only wheels, ...), no image
    assert unavoidable_image(unzipped=300 * MB, largest=[("scipy", 100 * MB)]) is None
    # GPU wheels have a CPU-only fix: the too-large error says so instead
    assert unavoidable_image(unzipped=861 * MB, largest=[("nvidia_nccl_cu12", 468 * MB),
                                                         ("xgboost", 300 * MB)]) is None
