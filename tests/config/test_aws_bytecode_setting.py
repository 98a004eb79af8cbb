"""``aws.bytecode`` takes the four modes the Lambda build knows, and nothing else."""

from __future__ import annotations

import pytest

from slml.config import parse_config
from slml.errors import ConfigError

BASE = "name: iris\nmodel: artifacts/iris\n"


@pytest.mark.parametrize("mode", ["auto", "always", "full", "never"])
def test_each_bytecode_mode_is_accepted(mode: str) -> None:
    assert parse_config(f"{BASE}aws: {{bytecode: {mode}}}\n").aws.bytecode == mode


def test_the_default_is_auto_and_an_unknown_mode_names_the_key() -> None:
    assert parse_config(BASE).aws.bytecode == "auto"
    with pytest.raises(ConfigError) as info:
        parse_config(f"{BASE}aws: {{bytecode: all}}\n")
    assert "aws.bytecode: 'all' is not allowed" in str(info.value)
