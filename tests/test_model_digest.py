"""Issue 11, D5: a real control on top of the unsigned manifest: the artifact digest
pinned in slml.yaml (``model_digest: sha256:...``), checked before anything is built,
and printed by ``slml save`` so there is something to pin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import pytest

from slml import api
from slml.cli import main
from slml.config import parse_config
from slml.errors import ConfigError, IntegrityError, ProviderUnavailable
from slml.runtime.manifest import MANIFEST_FILE, artifact_digest, read_manifest


def _pinned(tmp_path: Path, artifact: Path, digest: str) -> Path:
    config = tmp_path / "slml.yaml"
    config.write_text(f"name: iris\nmodel: {artifact}\nprovider: aws\nmodel_digest: {digest}\n")
    return config


def _no_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy stops at its preflight, right after the pin check: nothing is built."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    assert shutil.which("pulumi") is None


def test_a_swapped_artifact_fails_the_pin_before_the_build(
    tmp_path: Path, iris_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = "sha256:" + artifact_digest(read_manifest(iris_artifact))
    config = _pinned(tmp_path, iris_artifact, pinned)
    _no_pulumi(tmp_path, monkeypatch)
    with pytest.raises(ProviderUnavailable, match="Pulumi CLI"):  # the pin passed
        api.deploy(config)
    # whoever can write the model can write a matching manifest: the pin still catches it
    manifest = json.loads((iris_artifact / MANIFEST_FILE).read_text())
    manifest["requirements"].append("evil-package==1.0")
    (iris_artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="does not match model_digest") as info:
        api.deploy(config)
    assert pinned in str(info.value)
    with pytest.raises(IntegrityError, match="does not match model_digest"):
        api.build(config)
    assert not (tmp_path / ".slml" / "builds").exists()


def test_the_digest_of_a_built_bundle_is_checked_too(tmp_path: Path, iris_artifact: Path):
    config = parse_config(
        f"name: iris\nmodel: {iris_artifact}\nmodel_digest: sha256:{'a' * 64}\n"
    )
    with pytest.raises(IntegrityError, match="the bundle built"):
        api.check_model_digest(config, "b" * 64, what="the bundle built")
    api.check_model_digest(config, "a" * 64, what="the bundle built")
    api.check_model_digest(config.model_copy(update={"model_digest": None}), "b" * 64, what="x")


@pytest.mark.parametrize("value", ["abc", "sha256:xyz", "md5:" + "a" * 32, "sha256:" + "A" * 64])
def test_the_pin_must_be_a_sha256_digest(value: str) -> None:
    with pytest.raises(ConfigError, match="model_digest"):
        parse_config(f"name: iris\nmodel: m\nmodel_digest: '{value}'\n")


def test_slml_save_prints_the_digest_to_pin(
    tmp_path: Path, iris_model: object, capsys: pytest.CaptureFixture[str]
) -> None:
    joblib.dump(iris_model, tmp_path / "iris.joblib")
    out = tmp_path / "art"
    with pytest.raises(SystemExit) as done:
        main(["save", str(tmp_path / "iris.joblib"), "--out", str(out)])
    assert done.value.code in (0, None)
    printed = capsys.readouterr().out
    digest = "sha256:" + artifact_digest(read_manifest(out))
    assert f"model_digest: {digest}" in printed
