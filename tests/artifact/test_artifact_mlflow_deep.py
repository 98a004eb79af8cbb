"""MLflow's pytorch, keras and transformers flavors mapped onto slml's torch, keras and
transformers flavors: a real ``mlflow.<flavor>.save_model`` into a directory, then
``slml save DIR`` (the CLI, in its own process) and a predict through the runtime
loader equal to the original model's. A module no compiler can take falls back to
mlflow.pyfunc and says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mlflow")
pytest.importorskip("torch")

import torch

from slml.artifact import load_model
from slml.artifact.mlflow_source import save_mlflow_model
from slml.runtime.manifest import read_manifest

pytestmark = pytest.mark.slow
sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "mlflow"))
from torch_nets import Net, Opaque  # noqa: E402

SLML = str(Path(sys.executable).parent / "slml")
ROWS = np.random.default_rng(5).normal(size=(4, 4)).astype("float32")


def slml_save(source: Path, out: Path) -> dict[str, Any]:
    """``slml save SOURCE --out OUT`` in its own process; the manifest it wrote."""
    env = {**os.environ, "KERAS_BACKEND": "torch", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([SLML, "save", str(source), "--out", str(out), "--no-check"],
                          capture_output=True, text=True, env=env, timeout=600,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return read_manifest(out)


def predict(artifact: Path, rows: Any) -> Any:
    return load_model(artifact).predict({"instances": rows})


def torch_out(module: torch.nn.Module, rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(rows)).numpy()


def test_pytorch_pt2_maps_to_the_torch_flavors_export_format(tmp_path: Path) -> None:
    import mlflow.pytorch

    net = Net().eval()
    mlflow.pytorch.save_model(net, tmp_path / "mlf", input_example=ROWS)  # MLflow 3: pt2
    manifest = slml_save(tmp_path / "mlf", tmp_path / "art")
    assert manifest["flavor"] == "torch"
    assert manifest["flavor_options"]["format"] == "export"
    assert manifest["source"]["kind"] == "mlflow" and "native_fallback" not in manifest["source"]
    got = np.asarray(predict(tmp_path / "art", ROWS.tolist()))
    assert np.allclose(got, torch_out(net, ROWS), atol=1e-6)


def test_pickled_torchscript_and_module_map_to_the_torch_flavor(tmp_path: Path) -> None:
    import mlflow.pytorch

    net = Net().eval()
    mlflow.pytorch.save_model(torch.jit.script(net), tmp_path / "script", input_example=ROWS,
                              serialization_format="pickle")  # fmt: skip
    mlflow.pytorch.save_model(net, tmp_path / "module", input_example=ROWS,
                              serialization_format="pickle")  # fmt: skip
    for name, fmt in (("script", "torchscript"), ("module", "export")):
        info = save_mlflow_model(tmp_path / name, tmp_path / f"{name}-art", check=False)
        assert info.flavor == "torch" and info.manifest["flavor_options"]["format"] == fmt
        got = np.asarray(predict(info.path, ROWS.tolist()))
        assert np.allclose(got, torch_out(net, ROWS), atol=1e-6), name


def test_a_module_no_compiler_takes_falls_back_to_pyfunc_saying_why(tmp_path: Path) -> None:
    import mlflow.pytorch

    net = Opaque().eval()
    mlflow.pytorch.save_model(net, tmp_path / "mlf", input_example=ROWS,
                              serialization_format="pickle")  # fmt: skip
    info = save_mlflow_model(tmp_path / "mlf", tmp_path / "art", check=False)
    assert info.flavor == "mlflow"
    why = info.manifest["source"]["native_fallback"]
    assert why.startswith("the torch flavor cannot save it") and "torch.jit.script" in why
    assert any(r.startswith("mlflow==") for r in info.manifest["requirements"])
    got = np.asarray(predict(info.path, ROWS.tolist()))
    assert np.allclose(got, torch_out(net, ROWS), atol=1e-6)


def test_keras_maps_to_the_keras_flavor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras was imported with another backend in this process")
    import mlflow.keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    (tmp_path / "mlf").mkdir()  # mlflow.keras writes its input example before the directory
    mlflow.keras.save_model(model, str(tmp_path / "mlf"), input_example=ROWS)
    manifest = slml_save(tmp_path / "mlf", tmp_path / "art")
    assert manifest["flavor"] == "keras" and manifest["flavor_options"]["backend"] == "torch"
    got = np.asarray(predict(tmp_path / "art", ROWS.tolist()))
    assert np.allclose(got, model.predict(ROWS, verbose=0), atol=1e-6)


def test_transformers_maps_to_the_transformers_flavor(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    import hf_tiny
    import mlflow.transformers
    import transformers

    pipe = hf_tiny.pipeline("text-classification")
    pins = [f"transformers=={transformers.__version__}",
            f"torch=={torch.__version__.split('+')[0]}"]  # fmt: skip
    # explicit pins: MLflow's inference of them imports torchvision, absent here
    mlflow.transformers.save_model(pipe, tmp_path / "mlf", input_example=hf_tiny.SAMPLE,
                                   pip_requirements=pins)  # fmt: skip
    manifest = slml_save(tmp_path / "mlf", tmp_path / "art")
    assert manifest["flavor"] == "transformers"
    assert manifest["flavor_options"]["task"] == "text-classification"
    texts = ["good film", "terrible plot", "great acting"]
    got, want = predict(tmp_path / "art", texts), pipe(texts)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert max(abs(g["score"] - w["score"]) for g, w in zip(got, want, strict=True)) < 1e-6
