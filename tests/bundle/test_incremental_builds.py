"""Incremental builds REUSE what did not change (asserted through what is on disk and
what the bundle reports, never through timing): the Azure package keeps its cached
dependency tree and zip, the container context and model.tar.gz are rewritten only when
their inputs change, and a changed lock or tampered output invalidates the reuse."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from slml.bundle.azure import (
    REBUILT_NOTE,
    REUSED_NOTE,
    SITE_PACKAGES,
    UPDATED_NOTE,
    azure_target,
    build_azure_package,
    cached_dependencies,
)
from slml.bundle.container import build_container_context
from slml.bundle.incremental import (
    digest,
    load_record,
    record_path,
    save_record,
    zip_onto,
)
from slml.bundle.lock import read_lock
from slml.bundle.size import zip_dir
from slml.runtime.manifest import MANIFEST_FILE
from tests.conftest import _train_iris, write_sklearn_artifact

HOST_PYTHON = "3.11"


def stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def retrained(dest: Path, *, version_: str, max_iter: int) -> Path:
    """A new version of the iris model (different weights, same requirements)."""
    return write_sklearn_artifact(dest, _train_iris(max_iter=max_iter), version=version_)


# -- the helpers -----------------------------------------------------------------------


def test_digest_separates_its_parts() -> None:
    assert digest("ab", "c") != digest("a", "bc")
    assert digest("x") == digest(b"x")


def test_record_is_current_only_for_same_inputs_and_untouched_outputs(tmp_path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"one")
    save_record(record_path(out), inputs="k1", outputs=[out], data={"n": 1})
    record = load_record(record_path(out))
    assert record is not None and record.current("k1") and record.data == {"n": 1}
    assert not record.current("k2")
    out.write_bytes(b"two!")  # changed behind the build's back
    assert not record.current("k1")
    record_path(out).write_text("{not json")
    assert load_record(record_path(out)) is None


def test_zip_onto_appends_like_zip_dir_and_refuses_duplicates(tmp_path) -> None:
    deps, app = tmp_path / "deps", tmp_path / "app"
    (deps / "lib").mkdir(parents=True)
    (deps / "lib" / "a.py").write_text("a = 1\n")
    (app / "model").mkdir(parents=True)
    (app / "model" / "m.bin").write_bytes(b"\0" * 100)
    (app / "main.py").write_text("print(1)\n")
    (app / "lib").mkdir()  # excluded: would clash with the base zip
    (app / "lib" / "a.py").write_text("other\n")
    base = zip_dir(deps, tmp_path / "deps.zip")
    one = zip_onto(base, app, tmp_path / "one.zip", exclude={"lib"})
    two = zip_onto(base, app, tmp_path / "two.zip", exclude={"lib"})
    assert sha256(one.read_bytes()) == sha256(two.read_bytes())
    whole = zip_dir(app, tmp_path / "whole.zip")
    with zipfile.ZipFile(one) as zf, zipfile.ZipFile(whole) as ref:
        assert zf.namelist() == ["lib/a.py", "main.py", "model/m.bin"]
        for name in ("main.py", "model/m.bin"):
            got, want = zf.getinfo(name), ref.getinfo(name)
            assert (got.date_time, got.external_attr) == (want.date_time, want.external_attr)
            assert zf.read(name) == ref.read(name)
    with pytest.raises(ValueError, match=r"lib/a\.py"):
        zip_onto(base, app, tmp_path / "clash.zip")
    assert not (tmp_path / "clash.zip").exists()


# -- Azure -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slml-cache")


@pytest.fixture(scope="module")
def azure_first(tmp_path_factory, _iris_artifact_master, cache):
    out = tmp_path_factory.mktemp("azure-out")
    bundle = build_azure_package(
        artifact_dir=_iris_artifact_master, out_dir=out, python_version=HOST_PYTHON,
        cache_dir=cache,
    )  # fmt: skip
    return out, bundle


@pytest.mark.slow
def test_first_build_assembles_from_fresh_dependencies(azure_first) -> None:
    _, bundle = azure_first
    assert not bundle.reused and REBUILT_NOTE in bundle.notes
    assert bundle.files["deps_zip"].is_file()
    assert (bundle.path / SITE_PACKAGES / "sklearn").is_dir()


@pytest.mark.slow
def test_nothing_changed_reuses_the_package_and_its_zip(azure_first, _iris_artifact_master, cache):
    out, first = azure_first
    before = {name: stamp(first.files[name]) for name in ("zip", "deps_zip")}
    again = build_azure_package(
        artifact_dir=_iris_artifact_master, out_dir=out, python_version=HOST_PYTHON,
        cache_dir=cache,
    )  # fmt: skip
    assert again.reused and REUSED_NOTE in again.notes
    assert {name: stamp(again.files[name]) for name in before} == before
    assert again.size == first.size and again.lock_hash == first.lock_hash


@pytest.mark.slow
def test_model_only_change_keeps_the_dependencies_and_ships_the_new_model(
    azure_first, tmp_path, cache
) -> None:
    out, first = azure_first
    deps_zip = stamp(first.files["deps_zip"])
    kept = first.path / SITE_PACKAGES / "sklearn" / "__init__.py"
    kept_inode = kept.stat().st_ino
    artifact = retrained(tmp_path / "iris-v2", version_="2", max_iter=120)
    second = build_azure_package(
        artifact_dir=artifact, out_dir=out, python_version=HOST_PYTHON, cache_dir=cache
    )
    assert second.reused and UPDATED_NOTE in second.notes
    assert second.model_sha256 != first.model_sha256 and second.lock_hash == first.lock_hash
    assert stamp(second.files["deps_zip"]) == deps_zip  # the cached zip was not rewritten
    assert kept.stat().st_ino == kept_inode  # the package's dependencies were not recopied
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    assert json.loads((second.path / "model" / MANIFEST_FILE).read_text())["version"] == "2"
    with zipfile.ZipFile(second.files["zip"]) as zf:
        names = zf.namelist()
        assert len(names) == len(set(names))
        assert zf.read(f"model/{MANIFEST_FILE}") == (artifact / MANIFEST_FILE).read_bytes()
        for rel, expected in manifest["files"].items():
            assert sha256(zf.read(f"model/{rel}")) == expected
        assert any(n.startswith(".python_packages/lib/site-packages/sklearn/") for n in names)
    # the same inputs through a fresh output directory give the same zip, byte for byte
    fresh = build_azure_package(
        artifact_dir=artifact, out_dir=tmp_path / "fresh", python_version=HOST_PYTHON,
        cache_dir=cache,
    )  # fmt: skip
    assert REBUILT_NOTE in fresh.notes
    assert sha256(fresh.files["zip"].read_bytes()) == sha256(second.files["zip"].read_bytes())
    assert fresh.size == second.size


@pytest.mark.slow
def test_a_tampered_package_zip_is_rebuilt(azure_first, tmp_path, cache, _iris_artifact_master):
    artifact = shutil.copytree(_iris_artifact_master, tmp_path / "iris")
    out = tmp_path / "out"
    first = build_azure_package(
        artifact_dir=artifact, out_dir=out, python_version=HOST_PYTHON, cache_dir=cache
    )
    good = first.files["zip"].read_bytes()
    with open(first.files["zip"], "ab") as fh:
        fh.write(b"junk")
    again = build_azure_package(
        artifact_dir=artifact, out_dir=out, python_version=HOST_PYTHON, cache_dir=cache
    )
    assert REUSED_NOTE not in again.notes
    assert again.files["zip"].read_bytes() == good
    record = record_path(again.path)  # a record without its size report is not trusted
    record.write_text(record.read_text().replace('"size"', '"other"'))
    third = build_azure_package(
        artifact_dir=artifact, out_dir=out, python_version=HOST_PYTHON, cache_dir=cache
    )
    assert REUSED_NOTE not in third.notes and third.size == first.size


def _small_lock(tmp_path: Path, *names: str):
    path = tmp_path / f"lock-{len(names)}.txt"
    path.write_text("".join(f"{n}=={version(n)}\n" for n in names))
    return read_lock(path)


@pytest.mark.slow
def test_dependencies_are_cached_per_lock_and_python(tmp_path) -> None:
    cache = tmp_path / "cache"
    target = azure_target(HOST_PYTHON)
    lock = _small_lock(tmp_path, "threadpoolctl")
    first = cached_dependencies(lock, target=target, cache_dir=cache)
    again = cached_dependencies(lock, target=target, cache_dir=cache)
    assert not first.reused and again.reused and again.key == first.key
    assert stamp(again.zip) == stamp(first.zip)
    with zipfile.ZipFile(first.zip) as zf:
        names = zf.namelist()
    assert all(n.startswith(".python_packages/lib/site-packages/") for n in names)
    assert first.size.unzipped == sum(
        p.stat().st_size for p in first.site.rglob("*") if p.is_file()
    )
    changed = cached_dependencies(
        _small_lock(tmp_path, "threadpoolctl", "joblib"), target=target, cache_dir=cache
    )
    assert not changed.reused and changed.key != first.key and changed.zip != first.zip
    assert (changed.site / "joblib").is_dir() and not (first.site / "joblib").exists()
    other_python = cached_dependencies(lock, target=azure_target("3.12"), cache_dir=cache)
    assert not other_python.reused and other_python.key != first.key
    assert os.path.exists(first.zip)  # the other keys did not evict it


# -- containers (gcp, sagemaker) -------------------------------------------------------


def _container(artifact: Path, root: Path, cache: Path):
    return build_container_context(
        artifact, root / "context", provider="sagemaker", python_version=HOST_PYTHON,
        cache_dir=cache, model_tar=root / "model.tar.gz", measure=False,
    )  # fmt: skip


def test_container_context_and_tarball_are_reused_until_the_model_changes(
    tmp_path, iris_artifact, cache
) -> None:
    first = _container(iris_artifact, tmp_path, cache)
    dockerfile, tar = stamp(first.files["dockerfile"]), stamp(first.files["model_tar"])
    again = _container(iris_artifact, tmp_path, cache)
    assert "unchanged since the last build, reused: context, model.tar.gz" in again.notes
    assert stamp(again.files["dockerfile"]) == dockerfile and stamp(again.files["model_tar"]) == tar

    retrained(iris_artifact, version_="2", max_iter=130)
    third = _container(iris_artifact, tmp_path, cache)
    assert not any("reused:" in note for note in third.notes)
    assert third.model_sha256 != first.model_sha256
    shipped = json.loads((third.path / "model" / MANIFEST_FILE).read_text())
    assert shipped["version"] == "2"
    assert stamp(third.files["model_tar"]) != tar


def test_a_touched_context_is_rewritten(tmp_path, iris_artifact, cache) -> None:
    first = _container(iris_artifact, tmp_path, cache)
    original = first.files["dockerfile"].read_text()
    first.files["dockerfile"].write_text(original + "RUN echo tampered\n")
    again = _container(iris_artifact, tmp_path, cache)
    assert "unchanged since the last build, reused: model.tar.gz" in again.notes
    assert again.files["dockerfile"].read_text() == original
