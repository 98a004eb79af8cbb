"""Install a lock into a directory for a target platform (``uv pip install --target``).

For platform targets only binary wheels are accepted (``--only-binary :all:``) and uv
picks wheels for ``--python-platform``/``--python-version``, so a macOS or Windows host
builds a Linux bundle. AWS Lambda's platforms are in ``slml.bundle.lambda_platform``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from slml.bundle.lock import Lock, Target
from slml.bundle.uvtool import Runner, run_uv


def install_args(lock: Lock, dest: Path, *, target: Target) -> list[str]:
    """The ``uv`` arguments that install ``lock`` into ``dest`` for ``target``."""
    return [*_into(dest, target), "-r", str(lock.path)]


def _into(dest: Path, target: Target) -> list[str]:
    args = ["pip", "install", "--target", str(dest), "--no-deps", "--quiet"]
    if target.platform:
        args += ["--python-platform", target.platform, "--python-version", target.python_version]
        args += ["--only-binary", ":all:"]
    else:
        args += ["--python", sys.executable]
    return args


def install_for_target(
    lock: Lock, dest: Path, *, target: Target, runner: Runner = subprocess.run
) -> Path:
    """Install every pin of ``lock`` (no resolution: the lock is complete) into ``dest``.
    Blocking; raises PackagingError with uv's stderr tail when a wheel is missing."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    run_uv(install_args(lock, dest, target=target), runner=runner)
    return dest


def install_one(requirement: str, dest: Path, *, target: Target,
                runner: Runner = subprocess.run) -> Path:
    """Install one pinned wheel (no dependencies) into ``dest`` for ``target``: a donor
    of a vendored library (slml.bundle.lambda_native). Raises PackagingError."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    run_uv([*_into(dest, target), requirement], runner=runner)
    return dest
