"""The Azure package passes Microsoft's own checker, azure-functions-doctor (PyPI), run
as a process on the built package: requirements.txt (the lock) ships and declares
azure-functions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slml.bundle.azure import build_azure_package

pytestmark = pytest.mark.slow
DOCTOR = Path(sys.executable).with_name("azure-functions-doctor")


@pytest.fixture(scope="module")
def package(tmp_path_factory, _iris_artifact_master) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")
    cache = Path(shared) if shared else tmp_path_factory.mktemp("cache")
    bundle = build_azure_package(
        artifact_dir=_iris_artifact_master, out_dir=tmp_path_factory.mktemp("azure"),
        python_version="3.11", cache_dir=cache,
    )  # fmt: skip
    return bundle.path


def doctor(path: Path, tmp_path: Path) -> tuple[int, dict]:
    if not DOCTOR.is_file():
        pytest.skip("azure-functions-doctor is not installed (make dev installs it)")
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [str(DOCTOR), "doctor", "--path", str(path), "--profile", "deploy",
         "--target-python", "3.11", "--summary-json", str(summary), "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert summary.is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    return done.returncode, json.loads(summary.read_text())


def test_the_package_ships_the_lock_as_requirements_txt(package):
    pins = (package / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("azure-functions==1.") for line in pins)
    assert any(line.startswith("scikit-learn==") for line in pins)


def test_the_package_passes_azure_functions_doctor(package, tmp_path):
    code, summary = doctor(package, tmp_path)
    assert code == 0 and summary.get("failed", 1) == 0, summary


def test_the_doctor_fails_a_package_without_requirements(package, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(package, bare, ignore=shutil.ignore_patterns(".python_packages"))
    (bare / "requirements.txt").unlink()
    code, summary = doctor(bare, tmp_path)
    assert code != 0 or summary.get("failed", 0) > 0, summary
