"""Lambda's platforms: the wheels each runtime and architecture takes."""

from __future__ import annotations

import pytest

from slml.bundle.lambda_platform import lambda_platform, lambda_target
from slml.errors import ConfigError


@pytest.mark.parametrize(
    ("runtime", "arch", "platform"),
    [
        ("python3.12", "x86_64", "x86_64-manylinux_2_34"),
        ("python3.13", "arm64", "aarch64-manylinux_2_34"),
        ("python3.11", "x86_64", "x86_64-manylinux_2_17"),  # AL2: glibc 2.26
    ],
)
def test_lambda_platforms(runtime, arch, platform):
    assert lambda_platform(runtime, arch) == platform
    assert lambda_target(runtime, arch).python_version == runtime.removeprefix("python")


def test_unknown_runtime_is_a_config_error():
    with pytest.raises(ConfigError, match=r"aws\.runtime"):
        lambda_platform("python2.7", "x86_64")


def test_unknown_architecture_is_a_config_error():
    with pytest.raises(ConfigError, match=r"aws\.architecture: 'x86' is not x86_64 or arm64"):
        lambda_platform("python3.12", "x86")
