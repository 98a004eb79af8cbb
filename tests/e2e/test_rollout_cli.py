"""The rollout commands through the real `slml` console script, real servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from slml.providers import local_process as proc
from tests.conftest import _train_iris, write_sklearn_artifact

pytestmark = pytest.mark.e2e
SLML = str(Path(sys.executable).with_name("slml"))


def _slml(project: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLML_CACHE_DIR": str(Path(tempfile.gettempdir()) / "slml-test-cache"),
           "COLUMNS": "200"}  # fmt: skip
    done = subprocess.run([SLML, *args], cwd=project, capture_output=True, text=True,
                          timeout=600, env=env, check=False)  # fmt: skip
    assert done.returncode == code, f"slml {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def project(tmp_path: Path, iris_artifact: Path) -> Iterator[Path]:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(iris_artifact, root / "iris")
    (root / "slml.yaml").write_text(yaml.safe_dump({"name": "iris-cli", "model": "iris"}))
    try:
        yield root
    finally:
        for pid in proc.find_servers(proc.stage_marker(root.resolve(), "dev")):
            os.killpg(pid, signal.SIGKILL)


def test_canary_through_the_cli(project: Path) -> None:
    _slml(project, "deploy")
    shutil.rmtree(project / "iris")
    write_sklearn_artifact(project / "iris", _train_iris(seed=1, max_iter=151), version="2")
    plan = _slml(project, "preview", "--canary", "10").stdout
    assert "traffic: v1 100% primary -> v1 90% primary, v2 10% canary" in plan
    deployed = json.loads(_slml(project, "deploy", "--canary", "10", "--json").stdout)
    assert [(t["version"], t["percent"], t["role"]) for t in deployed["traffic"]] == [
        (1, 90.0, "primary"), (2, 10.0, "canary")]
    status = json.loads(_slml(project, "status", "--json").stdout)
    assert [{k: t[k] for k in ("version", "percent", "role")} for t in status["traffic"]] == [
        {"version": 1, "percent": 90.0, "role": "primary"},
        {"version": 2, "percent": 10.0, "role": "canary"}]
    assert "traffic: v1 90% primary, v2 10% canary" in _slml(project, "status").stdout
    both = _slml(project, "deploy", "--canary", "5", "--shadow", code=2)
    assert "pick one" in both.stderr + both.stdout
    _slml(project, "rollback")
    status = json.loads(_slml(project, "status", "--json").stdout)
    assert [(t["version"], t["role"]) for t in status["traffic"]] == [(1, "primary")]
    history = _slml(project, "history").stdout
    assert "canary" in history and "rollback" in history
    _slml(project, "destroy")
    assert proc.find_servers(proc.stage_marker(project.resolve(), "dev")) == []
