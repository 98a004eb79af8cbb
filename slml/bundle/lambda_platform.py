"""AWS Lambda's platforms: which manylinux wheels each runtime and architecture takes.

    python3.12, python3.13  Amazon Linux 2023, glibc 2.34 → <arch>-manylinux_2_34
    python3.11              Amazon Linux 2, glibc 2.26   → <arch>-manylinux_2_17
                            (uv has no 2_26 platform; 2_17 is the newest tag ≤ 2.26)
"""

from __future__ import annotations

from slml.bundle.lock import Target
from slml.errors import ConfigError

LAMBDA_GLIBC = {"python3.11": "2_17", "python3.12": "2_34", "python3.13": "2_34"}
LAMBDA_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}


def lambda_platform(runtime: str, architecture: str) -> str:
    """uv's ``--python-platform`` for a Lambda runtime and architecture,
    e.g. ``("python3.12", "arm64")`` → ``aarch64-manylinux_2_34``. Raises ConfigError
    naming the key for a runtime or architecture Lambda does not have."""
    if runtime not in LAMBDA_GLIBC:
        raise ConfigError(f"aws.runtime: {runtime!r} is not one of {', '.join(LAMBDA_GLIBC)}")
    if architecture not in LAMBDA_MACHINE:
        raise ConfigError(f"aws.architecture: {architecture!r} is not x86_64 or arm64")
    return f"{LAMBDA_MACHINE[architecture]}-manylinux_{LAMBDA_GLIBC[runtime]}"


def lambda_target(runtime: str, architecture: str) -> Target:
    """The install target of a Lambda bundle for ``runtime`` on ``architecture``."""
    return Target(
        "aws-lambda",
        python_version=runtime.removeprefix("python"),
        platform=lambda_platform(runtime, architecture),
    )
