"""Install a lock into a directory for a target platform (``uv pip install --target``).

For platform targets only binary wheels are accepted (``--only-binary :all:``) and uv
picks wheels for ``--python-platform``/``--python-version``, so a macOS or Windows host
builds a Linux bundle. AWS Lambda's platforms (``lambda_platform``):

    python3.12, python3.13  Amazon Linux 2023, glibc 2.34 → <arch>-manylinux_2_34
    python3.11              Amazon Linux 2, glibc 2.26   → <arch>-manylinux_2_17
                            (uv has no 2_26 platform; 2_17 is the newest tag ≤ 2.26)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from slml.bundle.lock import Lock, Target
from slml.bundle.uvtool import Runner, run_uv
from slml.errors import ConfigError

LAMBDA_GLIBC = {"python3.11": "2_17", "python3.12": "2_34", "python3.13": "2_34"}
LAMBDA_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}


def lambda_platform(runtime: str, architecture: str) -> str:
    """uv's ``--python-platform`` for a Lambda runtime and architecture,
    e.g. ``("python3.12", "arm64")`` → ``aarch64-manylinux_2_34``."""
    if runtime not in LAMBDA_GLIBC:
        raise ConfigError(f"aws.runtime: {runtime!r} is not one of {', '.join(LAMBDA_GLIBC)}")
    if architecture not in LAMBDA_MACHINE:
        raise ConfigError(f"aws.architecture: {architecture!r} is not x86_64 or arm64")
    return f"{LAMBDA_MACHINE[architecture]}-manylinux_{LAMBDA_GLIBC[runtime]}"


def lambda_target(runtime: str, architecture: str) -> Target:
    return Target(
        "aws-lambda",
        python_version=runtime.removeprefix("python"),
        platform=lambda_platform(runtime, architecture),
    )


def install_args(lock: Lock, dest: Path, *, target: Target) -> list[str]:
    """The ``uv`` arguments that install ``lock`` into ``dest`` for ``target``."""
    args = ["pip", "install", "--target", str(dest), "--no-deps", "--quiet"]
    if target.platform:
        args += ["--python-platform", target.platform, "--python-version", target.python_version]
        args += ["--only-binary", ":all:"]
    else:
        args += ["--python", sys.executable]
    return [*args, "-r", str(lock.path)]


def install_for_target(
    lock: Lock, dest: Path, *, target: Target, runner: Runner = subprocess.run
) -> Path:
    """Install every pin of ``lock`` (no resolution: the lock is complete) into ``dest``.
    Blocking; raises PackagingError with uv's stderr tail when a wheel is missing."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    run_uv(install_args(lock, dest, target=target), runner=runner)
    return dest
