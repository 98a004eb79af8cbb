"""The Azure package, built for real with uv: Linux x86_64 wheels only, for the
configured Python, ELF-checked; and self-contained: the generated function_app.py
answers in an isolated interpreter with only the package on sys.path."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from slml.bundle.azure import AZURE_PLATFORM, SITE_PACKAGES, build_azure_package
from slml.bundle.elf import check_binaries, scan
from slml.errors import IncompatibleWheel
from tests.bundle.test_azure_app import IRIS_CASES, check_iris_answers, drive

pytestmark = pytest.mark.slow
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slml-cache")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, _iris_artifact_master) -> Path:
    return _iris_artifact_master


def wheel_tags(site: Path) -> dict[str, list[str]]:
    """Each installed distribution's wheel tags, from its WHEEL file."""
    tags = {}
    for wheel in site.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        tags[wheel.parent.name] = [x.split(": ", 1)[1] for x in lines if x.startswith("Tag:")]
    return tags


@pytest.fixture(scope="module", params=["3.11", "3.12"])
def built(request, tmp_path_factory, artifact, cache):
    out = tmp_path_factory.mktemp(f"azure-{request.param}")
    bundle = build_azure_package(
        artifact_dir=artifact, out_dir=out, python_version=request.param, cache_dir=cache
    )
    return request.param, bundle


def test_only_linux_x86_64_wheels_for_the_configured_python(built):
    python, bundle = built
    site = bundle.path / SITE_PACKAGES
    tags = wheel_tags(site)
    assert any(name.startswith("azure_functions-1.") for name in tags)
    assert any(name.startswith("scikit_learn-") for name in tags)
    cp = "cp" + python.replace(".", "")
    for dist, dist_tags in tags.items():
        for tag in dist_tags:
            interpreter, abi, platform = tag.split("-")
            assert platform == "any" or ("linux" in platform and platform.endswith("x86_64")), (
                dist, tag)  # fmt: skip
            if platform != "any":
                assert interpreter in (cp, "py3") and abi in (cp, "abi3", "none"), (dist, tag)
                assert "manylinux" in platform, (dist, tag)
    assert bundle.platform == AZURE_PLATFORM and bundle.python_version == python


def test_every_native_library_is_an_x86_64_elf(built):
    _, bundle = built
    site = bundle.path / SITE_PACKAGES
    assert check_binaries(site, machine="x86_64") > 10
    with pytest.raises(IncompatibleWheel):
        check_binaries(site, machine="arm64")
    assert not any(str(binary.path).endswith((".pyd", ".dll", ".dylib")) for binary in scan(site))


def test_zip_layout_and_size_report(built):
    _, bundle = built
    names = set(zipfile.ZipFile(bundle.files["zip"]).namelist())
    for required in ("function_app.py", "host.json", "slml/runtime/app.py",
                     "model/slml-model.json"):  # fmt: skip
        assert required in names
    assert any(n.startswith(".python_packages/lib/site-packages/sklearn/") for n in names)
    assert not any("__pycache__" in n for n in names)
    size = bundle.size
    assert 0 < size.zipped < size.unzipped
    assert size.largest and size.largest[0][1] >= size.largest[-1][1]
    assert json.loads((bundle.path / "host.json").read_text())["version"] == "2.0"


def test_package_answers_in_an_isolated_interpreter(built):
    python, bundle = built
    if python != HOST_PYTHON:
        pytest.skip(f"the {python} package needs a Python {python} interpreter to run")
    site = str(bundle.path / SITE_PACKAGES)
    report = drive(bundle.path, IRIS_CASES, site, isolated=True)
    assert report["func_file"].startswith(site)  # azure-functions from the package
    assert report["module_file"] == str(bundle.path / "function_app.py")
    assert report["auth_level"] == "FUNCTION"
    check_iris_answers(report)


def test_model_only_change_reuses_the_dependencies(built, tmp_path, artifact, cache):
    python, first = built
    again = build_azure_package(
        artifact_dir=artifact, out_dir=tmp_path, python_version=python, cache_dir=cache
    )
    assert again.reused and again.lock_hash == first.lock_hash
