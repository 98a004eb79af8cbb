"""The keras flavor: a Keras 3 model is detected before the sklearn/python flavors would
pickle it, saved as .keras, its backend recorded (manifest, requirements, env) and
served with predict(..., verbose=0)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from artifact_helpers import read_manifest

from slml.artifact import load_model, save_model, save_model_file
from slml.bundle.served_env import served_env
from slml.config import parse_config

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
keras = pytest.importorskip("keras")
ROWS = np.random.default_rng(0).random((4, 3)).astype("float32")


@pytest.fixture(scope="module")
def model() -> Any:
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    return net


def test_a_keras_model_is_saved_natively_with_its_backend(
    tmp_path: Path, model: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    info = save_model(model, tmp_path / "k", sample_input=ROWS)
    manifest = read_manifest(info.path)
    backend = keras.backend.backend()
    assert manifest["flavor"] == "keras" and (info.path / "model" / "model.keras").is_file()
    assert manifest["framework"]["backend"] == backend == "torch"
    assert manifest["flavor_options"]["env"] == {"KERAS_BACKEND": backend}
    names = [r.split("==")[0] for r in manifest["requirements"]]
    assert names[:2] == ["keras", "torch"]
    assert manifest["signature"]["inputs"] == {"kind": "tensor", "dtype": "float32",
                                               "shape": [-1, 3]}  # fmt: skip
    assert "step" not in capfd.readouterr().out  # no progress bar: verbose=0
    served = load_model(info.path).predict(ROWS.tolist())
    assert np.allclose(served, model.predict(ROWS, verbose=0), atol=1e-6)


def test_a_keras_file_is_saved_from_its_path(tmp_path: Path, model: Any) -> None:
    model.save(str(tmp_path / "net.keras"))
    info = save_model_file(tmp_path / "net.keras", tmp_path / "art", sample_input=ROWS)
    assert info.flavor == "keras"
    assert (info.path / "model" / "model.keras").read_bytes() == (
        tmp_path / "net.keras"
    ).read_bytes()
    assert np.allclose(load_model(info.path).predict(ROWS[:1].tolist()),
                       model.predict(ROWS[:1], verbose=0), atol=1e-6)  # fmt: skip


def test_keras_backend_reaches_every_targets_environment(tmp_path: Path, model: Any) -> None:
    manifest = read_manifest(save_model(model, tmp_path / "k").path)
    config = parse_config("name: ab\nmodel: m\nenv: {A: '1'}\naws: {env: {A: '2'}}\n")
    for provider in ("local", "aws", "gcp", "azure", "sagemaker"):
        env = served_env(config, provider, manifest)
        assert env["KERAS_BACKEND"] == "torch", provider
        assert env["A"] == ("2" if provider == "aws" else "1"), provider
    assert served_env(config, "aws", manifest)["SLML_NUM_THREADS"] == "1"  # 1024 MB
    assert "SLML_NUM_THREADS" not in served_env(config, "local", manifest)
    big = parse_config("name: ab\nmodel: m\naws: {memory: 10240}\ngcp: {cpu: '4'}\n")
    assert served_env(big, "aws", manifest)["SLML_NUM_THREADS"] == "6"  # 10240 MB: 6 vCPUs
    assert served_env(big, "gcp", manifest)["SLML_NUM_THREADS"] == "4"
    override = parse_config("name: ab\nmodel: m\nlocal: {env: {KERAS_BACKEND: jax}}\n")
    assert served_env(override, "local", manifest)["KERAS_BACKEND"] == "jax"


def test_providers_read_the_env_from_config_and_artifact(tmp_path: Path, model: Any) -> None:
    from types import SimpleNamespace

    from slml.bundle.served_env import model_env

    path = save_model(model, tmp_path / "k").path
    config = parse_config(f"name: ab\nmodel: {path}\nenv: {{A: '1'}}\n")
    assert model_env(SimpleNamespace(config=config), "gcp") == {
        "KERAS_BACKEND": "torch", "SLML_NUM_THREADS": "1", "A": "1"}  # fmt: skip
    missing = parse_config(f"name: ab\nmodel: {tmp_path / 'none'}\n")
    assert model_env(SimpleNamespace(config=missing), "local") == {}
