"""The uv install command (a real install runs in test_lambda_bundle.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slml.bundle.install import install_args, install_for_target
from slml.bundle.lambda_platform import lambda_target
from slml.bundle.lock import Lock, Target
from slml.errors import PackagingError


def test_install_args_binary_only_for_platform_targets(tmp_path):
    lock = Lock(path=tmp_path / "r.lock", hash="h", pins=())
    args = install_args(lock, tmp_path / "d", target=lambda_target("python3.12", "arm64"))
    joined = " ".join(args)
    assert "--target" in args and "--only-binary :all:" in joined
    assert "--python-platform aarch64-manylinux_2_34 --python-version 3.12" in joined
    host = install_args(lock, tmp_path / "d", target=Target.here())
    assert "--python-platform" not in host and sys.executable in host


def test_install_failure_is_a_packaging_error(tmp_path):
    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "No solution: nosuchpkg has no wheels")

    lock = Lock(path=Path(tmp_path / "r.lock"), hash="h", pins=())
    with pytest.raises(PackagingError, match="nosuchpkg"):
        install_for_target(lock, tmp_path / "d", target=Target.here(), runner=failing)
