"""examples/provider-docker as a user installs it: from its own directory, with the
real installer, then the real `slml` console script sees a `docker` provider with its
own `docker:` section."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "provider-docker"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed by uv from its own directory into a site directory."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [str(BIN / "uv"), "pip", "install", "--python", sys.executable, "--no-deps",
         "--target", str(site), str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return site


def slml(project: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run([str(BIN / "slml"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_installed_plug_in_has_a_validated_section(plugin_site: Path, tmp_path: Path) -> None:
    assert (plugin_site / "slml_provider_docker-0.1.0.dist-info" / "entry_points.txt").is_file()
    (tmp_path / "model").mkdir()
    done = slml(tmp_path, plugin_site, "init", "model", "--provider", "docker")
    assert done.returncode == 0, done.stderr
    assert "provider: docker" in (tmp_path / "slml.yaml").read_text()
    with (tmp_path / "slml.yaml").open("a") as file:
        file.write("docker:\n  prot: 9090\n")
    done = slml(tmp_path, plugin_site, "preview")
    assert done.returncode == 2 and "docker.prot: unknown key" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_the_plug_in_the_docker_provider_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    done = subprocess.run([str(BIN / "slml"), "init", "model", "--provider", "docker"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "--provider 'docker' is not one of" in done.stderr

# The deploy itself (a real docker build and run) is in tests/containers/test_provider_docker.py,
# beside the engine, the stand-in base images and the package-index proxy it needs.
