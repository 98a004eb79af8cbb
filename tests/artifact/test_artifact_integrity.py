"""Issue 11, D1/D3/D8: what an artifact may hold (regular files and directories, nothing
that points elsewhere), what builders copy out of it (exactly the listed files), and the
one digest that names the whole artifact (manifest included)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import slml.bundle.container as container
import slml.bundle.local as local
from slml.artifact import load_model, save_model
from slml.artifact.store import copy_artifact, verified_manifest
from slml.bundle.lock import Lock
from slml.errors import ArtifactError, IntegrityError
from slml.runtime.manifest import MANIFEST_FILE, artifact_digest, hash_tree, read_manifest


def _secret_dir(tmp_path: Path) -> Path:
    secret = tmp_path / "home" / ".aws"
    secret.mkdir(parents=True)
    (secret / "credentials").write_text("[default]\naws_secret_access_key = hunter2\n")
    return secret


def _relist(artifact: Path) -> None:
    """Rewrite the manifest's file list the way an attacker who can write the artifact
    can (the manifest is unsigned); a symlink must be refused even when listed."""
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    files = {}
    for dirpath, _dirs, names in os.walk(artifact, followlinks=True):
        for name in names:
            full = Path(dirpath) / name
            rel = full.relative_to(artifact).as_posix()
            if rel != MANIFEST_FILE:
                import hashlib

                files[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
    manifest["files"] = files
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())


# -- D1: symlinks and special files ----------------------------------------------------
def test_a_directory_symlink_in_an_artifact_is_refused(iris_artifact: Path, tmp_path: Path):
    (iris_artifact / "model" / "aws").symlink_to(_secret_dir(tmp_path))
    with pytest.raises(IntegrityError, match=r"model/aws is a symlink"):
        load_model(iris_artifact)
    with pytest.raises(IntegrityError, match=r"model/aws is a symlink"):
        verified_manifest(iris_artifact)


def test_a_listed_file_symlink_is_refused(iris_artifact: Path, tmp_path: Path):
    (iris_artifact / "model" / "creds").symlink_to(_secret_dir(tmp_path) / "credentials")
    _relist(iris_artifact)  # the link's target hash is now "right"
    with pytest.raises(IntegrityError, match=r"model/creds is a symlink") as info:
        load_model(iris_artifact)
    assert "missing" not in str(info.value)  # one problem, said once


def test_a_fifo_in_an_artifact_is_refused(iris_artifact: Path):
    os.mkfifo(iris_artifact / "model" / "pipe")
    with pytest.raises(IntegrityError, match=r"model/pipe is not a regular file \(a FIFO\)"):
        load_model(iris_artifact)


def test_copy_artifact_copies_exactly_the_listed_files(iris_artifact: Path, tmp_path: Path):
    manifest = copy_artifact(iris_artifact, tmp_path / "copy")
    assert _tree(tmp_path / "copy") == sorted([MANIFEST_FILE, *manifest["files"]])
    assert hash_tree(tmp_path / "copy") == manifest["files"]
    assert manifest == read_manifest(iris_artifact)


def test_copy_artifact_refuses_a_symlinked_secret_and_writes_nothing(
    iris_artifact: Path, tmp_path: Path
):
    (iris_artifact / "model" / "aws").symlink_to(_secret_dir(tmp_path))
    with pytest.raises(IntegrityError, match="symlink"):
        copy_artifact(iris_artifact, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_copy_artifact_checks_what_it_copies_against_the_expected_manifest(
    iris_artifact: Path, tmp_path: Path
):
    """A builder reads the manifest early (requirements) and copies later: an artifact
    re-saved in between must not slip into the bundle under the old digest."""
    expected = verified_manifest(iris_artifact)
    changed = json.loads((iris_artifact / MANIFEST_FILE).read_text())
    changed["version"] = "2"
    (iris_artifact / MANIFEST_FILE).write_text(json.dumps(changed))
    with pytest.raises(IntegrityError, match="changed while"):
        copy_artifact(iris_artifact, tmp_path / "copy", manifest=expected)
    assert not (tmp_path / "copy").exists()


def test_builders_share_one_verification(iris_artifact: Path, tmp_path: Path):
    assert local.verified_manifest is verified_manifest
    assert container.verified_manifest is verified_manifest


def test_container_context_and_tarball_hold_only_listed_files(
    iris_artifact: Path, tmp_path: Path
):
    manifest = read_manifest(iris_artifact)
    (tmp_path / "requirements.lock").write_text("")
    lock = Lock(path=tmp_path / "requirements.lock", hash="0" * 64, pins=())
    (iris_artifact / "model" / "aws").symlink_to(_secret_dir(tmp_path))
    with pytest.raises(IntegrityError, match="symlink"):
        container.write_context(
            iris_artifact, tmp_path / "ctx", lock=lock, manifest=manifest, digest="d",
            provider="gcp", python_version="3.11",
        )  # fmt: skip
    with pytest.raises(IntegrityError, match="symlink"):
        container.model_tarball(iris_artifact, tmp_path / "model.tar.gz")
    assert not list(tmp_path.glob("ctx/**/credentials"))


def test_save_refuses_a_symlink_inside_a_shipped_directory(
    tmp_path: Path, user_modules: Any
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "weights.json").write_text("[1]")
    (data / "aws").symlink_to(_secret_dir(tmp_path))
    model = user_modules("class M:\n    def predict(self, rows):\n        return rows\n").M()
    with pytest.raises(ArtifactError, match=r"aws is a symlink"):
        save_model(model, tmp_path / "m", artifacts={"data": data})
    assert not (tmp_path / "m").exists()


# -- D3: nothing that can hang a read ----------------------------------------------------
@pytest.mark.timeout(20)
def test_a_model_file_linked_to_dev_zero_is_refused_quickly(iris_artifact: Path):
    model_file = iris_artifact / "model" / "model.joblib"
    model_file.unlink()
    model_file.symlink_to("/dev/zero")
    with pytest.raises(IntegrityError, match=r"model/model\.joblib is a symlink"):
        load_model(iris_artifact)
    with pytest.raises(IntegrityError, match="symlink"):
        load_model(iris_artifact, verify=False)


@pytest.mark.timeout(20)
def test_a_fifo_manifest_is_refused_quickly(iris_artifact: Path):
    (iris_artifact / MANIFEST_FILE).unlink()
    os.mkfifo(iris_artifact / MANIFEST_FILE)
    with pytest.raises(ArtifactError, match="not a regular file"):
        load_model(iris_artifact)


# -- D8: one digest for the whole artifact --------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        {"version": "2"},
        {"requirements": ["scikit-learn==0.0.1"]},
        {"flavor_options": {"file": "model/model.joblib", "method": "predict_proba"}},
    ],
)
def test_the_digest_covers_the_manifest(iris_artifact: Path, change: dict[str, Any]):
    manifest = read_manifest(iris_artifact)
    assert artifact_digest({**manifest, **change}) != artifact_digest(manifest)
    assert {**manifest, **change}["files"] == manifest["files"]  # same model file


def test_the_digest_ignores_formatting_but_not_content(iris_artifact: Path):
    manifest = read_manifest(iris_artifact)
    shuffled = dict(reversed(list(manifest.items())))
    assert artifact_digest(shuffled) == artifact_digest(manifest)
    with pytest.raises(TypeError, match="whole manifest"):
        artifact_digest(manifest["files"])
