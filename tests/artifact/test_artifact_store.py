"""Atomic writes, overwrite rules, integrity on load, names and provenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from artifact_helpers import read_manifest, siblings

from slml.artifact import load_model, save_model
from slml.artifact.provenance import git_commit
from slml.errors import ArtifactError, IntegrityError


def test_existing_artifact_is_not_overwritten_without_consent(
    tmp_path: Path, iris: Any, iris_clf: Any
) -> None:
    first = save_model(iris_clf, tmp_path / "m", version="1")
    with pytest.raises(ArtifactError, match="already exists") as info:
        save_model(iris_clf, tmp_path / "m", version="2")
    assert "overwrite=True" in str(info.value)
    assert read_manifest(first.path)["version"] == "1"
    second = save_model(iris_clf, tmp_path / "m", version="2", overwrite=True)
    assert read_manifest(second.path)["version"] == "2"
    assert siblings(second.path) == ["m"]  # no staging or old copy left behind


EXPLODING = """
class Exploding:
    def predict(self, inputs):
        raise RuntimeError("boom")
"""


def test_failed_save_leaves_no_partial_directory(tmp_path: Path, user_modules: Any) -> None:
    """The python flavor copies code and data before its check run fails."""
    model = user_modules(EXPLODING).Exploding()
    with pytest.raises(ArtifactError, match="boom"):
        save_model(model, tmp_path / "out" / "m", sample_input=[[1.0]])
    assert siblings(tmp_path / "out" / "m") == []


def test_failed_overwrite_keeps_the_old_artifact(
    tmp_path: Path, iris: Any, iris_clf: Any, user_modules: Any
) -> None:
    good = save_model(iris_clf, tmp_path / "out" / "m", sample_input=iris[0][:2])
    exploding = user_modules(EXPLODING).Exploding()
    with pytest.raises(ArtifactError, match="boom"):
        save_model(exploding, tmp_path / "out" / "m", sample_input=iris[0][:2], overwrite=True)
    assert read_manifest(good.path) == good.manifest
    assert siblings(good.path) == ["m"]
    assert load_model(good.path).predict([[5.1, 3.5, 1.4, 0.2]]) == [0]


def test_directory_that_is_not_an_artifact_is_never_replaced(tmp_path: Path, iris_clf: Any) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="not an slml artifact"):
        save_model(iris_clf, tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert save_model(iris_clf, tmp_path / "empty").name == "empty"


def test_tampered_file_is_refused(tmp_path: Path, iris_clf: Any) -> None:
    info = save_model(iris_clf, tmp_path / "m")
    model_file = info.path / "model" / "model.joblib"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match=r"model/model\.joblib has sha256"):
        load_model(info.path)


def test_extra_and_missing_files_are_refused(tmp_path: Path, iris_clf: Any) -> None:
    info = save_model(iris_clf, tmp_path / "m")
    (info.path / "model" / "evil.py").write_text("import os\n")
    with pytest.raises(IntegrityError, match=r"model/evil\.py is not listed"):
        load_model(info.path)
    (info.path / "model" / "evil.py").unlink()
    (info.path / "model" / "model.joblib").unlink()
    with pytest.raises(IntegrityError, match="is missing"):
        load_model(info.path)


def test_not_an_artifact_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not an slml model artifact"):
        load_model(tmp_path)


def test_default_name_is_the_sanitised_directory_name(tmp_path: Path, iris_clf: Any) -> None:
    assert save_model(iris_clf, tmp_path / "My Iris Model!").name == "my-iris-model"
    info = save_model(iris_clf, tmp_path / "x", name="iris.v2", version=3)
    assert (info.name, info.version) == ("iris.v2", "3")
    for bad in ({"name": "has space"}, {"name": "-lead"}, {"version": "a/b"}, {"version": ""}):
        with pytest.raises(ArtifactError, match="is not valid"):
            save_model(iris_clf, tmp_path / "bad", **bad)


def test_provenance_fields(tmp_path: Path, iris_clf: Any) -> None:
    manifest = save_model(iris_clf, tmp_path / "m").manifest
    assert manifest["created_at"].endswith("+00:00")
    assert "@" in manifest["created_by"]
    assert manifest["python_version"].count(".") == 2
    assert manifest["slml_version"]
    assert manifest["git_commit"] is None  # tmp_path is not in a repository


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_git_commit_is_recorded_inside_a_repository(tmp_path: Path, iris_clf: Any) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert git_commit(repo / "artifacts" / "m") is None  # a repository with no commit yet
    (repo / "train.py").write_text("print('train')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "train")
    info = save_model(iris_clf, repo / "artifacts" / "m")
    assert info.manifest["git_commit"] == _git(repo, "rev-parse", "HEAD")


def test_git_commit_never_fails(tmp_path: Path) -> None:
    def no_git(*_a: Any, **_k: Any) -> Any:
        raise FileNotFoundError("git")

    assert git_commit(tmp_path, runner=no_git) is None


def test_importing_the_artifact_package_is_light() -> None:
    """Frameworks load only when a model of theirs is saved."""
    heavy = ("sklearn", "numpy", "scipy", "pandas", "onnx", "onnxruntime", "skl2onnx", "joblib")
    code = f"import sys, slml.artifact; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
