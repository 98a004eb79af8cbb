"""Helpers for the end-to-end tests that drive the real `slml` console script in a
project directory (a uniquely named module: tests/e2e has no __init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SLML = str(Path(sys.executable).with_name("slml"))


def run_slml(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``slml ARGS`` in ``project``; with ``check``, a non-zero exit fails the test with
    both outputs."""
    done = subprocess.run([SLML, *args], cwd=project, capture_output=True, text=True,
                          timeout=900, env=os.environ.copy(), check=False)
    if check:
        assert done.returncode == 0, f"slml {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def project_dir(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An empty project directory; one dependency cache for the session."""
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "slml-cache"))
    project = tmp_path / "project"
    project.mkdir()
    return project
