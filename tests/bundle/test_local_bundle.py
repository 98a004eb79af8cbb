from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import slml
from slml.bundle.local import (
    BUNDLE_MANIFEST,
    LOCK_FILE,
    build_local_bundle,
    load_bundle,
    read_bundle_info,
)
from slml.bundle.lock import requirement_name
from slml.errors import ArtifactError, IntegrityError, PackagingError
from slml.providers.base import NullReporter
from slml.runtime.manifest import MANIFEST_FILE, artifact_digest, hash_tree, read_manifest
from tests.conftest import _train_iris, write_sklearn_artifact


@pytest.fixture(scope="module")
def cache() -> Path:
    """Content-addressed (locks and envs keyed by hashes), so sharing it across test
    files and runs is safe and spares rebuilding the same environment."""
    return Path(tempfile.gettempdir()) / "slml-test-cache"


def _build(artifact: Path, out: Path, cache: Path, **kwargs) -> tuple:
    reporter = NullReporter()
    bundle = build_local_bundle(
        artifact_dir=artifact, out_dir=out, reporter=reporter, cache_dir=cache, **kwargs
    )
    return bundle, reporter


def test_bundle_contents_and_manifest(iris_artifact: Path, tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "bundle"
    bundle, reporter = _build(iris_artifact, out, cache)
    assert sorted(p.name for p in out.iterdir()) == ["app", "model", LOCK_FILE, BUNDLE_MANIFEST]
    manifest = read_manifest(iris_artifact)
    info = read_bundle_info(out)
    assert info["slml_version"] == slml.__version__
    assert info["target"] == "local" and info["platform"] == "host"
    assert info["lock_hash"] == bundle.lock_hash
    assert info["model"]["sha256"] == artifact_digest(manifest) == bundle.model_sha256
    assert info["app_files"] == hash_tree(out / "app")
    assert hash_tree(out / "model") == manifest["files"]
    assert (out / "model" / MANIFEST_FILE).is_file()
    pinned = {requirement_name(line) for line in (out / LOCK_FILE).read_text().split()}
    assert {"uvicorn", "orjson", "scikit-learn", "numpy", "joblib"} <= pinned
    assert "starlette" not in pinned  # the runtime is plain ASGI
    steps = [message for kind, message in reporter.events if kind == "step"]
    assert steps[0].startswith("resolving") and steps[1].startswith("installing")
    assert steps[2] == "copying model iris 1"
    assert bundle.size.unzipped > bundle.size.parts["model"] > 0
    assert bundle.size.largest[0][1] >= bundle.size.largest[-1][1]
    assert "scikit_learn" in dict(bundle.size.largest)


def test_bundle_serves_from_its_own_env(iris_artifact: Path, tmp_path: Path, cache: Path) -> None:
    bundle, _ = _build(iris_artifact, tmp_path / "bundle", cache)
    env = bundle.files["env"]
    code = (
        "import sys, slml, sklearn; from slml.runtime.manifest import read_manifest; "
        "print(slml.__file__, sys.prefix, read_manifest('model')['name'])"
    )
    out = subprocess.run(
        [env / "bin" / "python", "-c", code],
        cwd=bundle.path,
        env={"PYTHONPATH": str(bundle.path / "app"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    slml_file, prefix, name = out.stdout.split()
    assert slml_file.startswith(str(bundle.path / "app"))
    assert Path(prefix) == env and name == "iris"


def test_model_only_rebuild_reuses_lock_and_env(
    iris_artifact: Path, tmp_path: Path, cache: Path
) -> None:
    out = tmp_path / "bundle"
    first, _ = _build(iris_artifact, out, cache)
    shutil.rmtree(iris_artifact)
    write_sklearn_artifact(iris_artifact, _train_iris(seed=1, max_iter=120), version="2")

    def no_uv(*args, **kwargs):
        raise AssertionError("a model-only change must not run uv")

    second, reporter = _build(iris_artifact, out, cache, runner=no_uv)
    assert second.reused and second.lock_hash == first.lock_hash
    assert second.files["env"] == first.files["env"]
    assert second.model_sha256 != first.model_sha256
    assert read_bundle_info(out)["model"]["version"] == "2"
    assert ("step", "installing dependencies (cached environment)") in reporter.events


def test_tampered_artifact_is_refused_before_anything_is_written(
    iris_artifact: Path, tmp_path: Path, cache: Path
) -> None:
    with open(iris_artifact / "model" / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "bundle"
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        _build(iris_artifact, out, cache)
    assert not out.exists()


def test_not_an_artifact_is_an_artifact_error(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="not an slml model artifact") as err:
        _build(tmp_path / "empty", tmp_path / "bundle", cache)
    assert not isinstance(err.value, IntegrityError)


def test_failed_rebuild_keeps_the_previous_bundle(
    iris_artifact: Path, tmp_path: Path, cache: Path
) -> None:
    out = tmp_path / "bundle"
    _build(iris_artifact, out, cache)
    before = hash_tree(out)
    manifest = json.loads((iris_artifact / MANIFEST_FILE).read_text())
    manifest["requirements"].append("slml-no-such-package-zz==1.0")
    (iris_artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackagingError, match=r"cannot resolve slml-no-such-package-zz==1\.0"):
        _build(iris_artifact, out, cache)
    assert hash_tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".bundle.lock"]


def test_load_bundle_reads_an_existing_bundle(
    iris_artifact: Path, tmp_path: Path, cache: Path
) -> None:
    built, _ = _build(iris_artifact, tmp_path / "bundle", cache)
    loaded = load_bundle(built.path, cache_dir=cache)
    assert (loaded.lock_hash, loaded.model_sha256, loaded.files["env"]) == (
        built.lock_hash,
        built.model_sha256,
        built.files["env"],
    )
    with pytest.raises(PackagingError, match="not a complete local bundle"):
        load_bundle(tmp_path, cache_dir=cache)


def test_a_killed_builds_staging_directory_is_swept(
    iris_artifact: Path, tmp_path: Path, cache: Path
) -> None:
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs, like a build killed with SIGKILL
    out_dir = tmp_path / "builds" / "local"
    left = out_dir.with_name(f".local.tmp-{dead.pid}-0123abcd")
    (left / "app").mkdir(parents=True)
    build_local_bundle(artifact_dir=iris_artifact, out_dir=out_dir, cache_dir=cache)
    assert not left.exists() and (out_dir / "model").is_dir()
    assert [p.name for p in out_dir.parent.iterdir() if p.name.startswith(".local.tmp-")] == []
