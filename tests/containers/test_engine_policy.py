"""Without a Docker engine the container tests skip with one line, except under
``CI=true``, where they fail: run as a child pytest against an engine that is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_without_engine(ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/containers/test_lambda_zip.py", "-k", "broken_handler"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_no_engine_outside_ci_skips_with_one_line():
    done = run_without_engine("")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout
    assert "SKIPPED [1]" in done.stdout and "no Docker engine answers" in done.stdout


def test_no_engine_in_ci_fails():
    done = run_without_engine("true")
    assert done.returncode != 0
    assert "CI=true and no Docker engine answers" in done.stdout
