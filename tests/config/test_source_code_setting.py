"""``requirements.source_code``: whether the installed modules a cold start reads ship
as bytecode only (auto) or keep their sources (keep), for every target that builds; and
``requirements.symbols``: whether their shared libraries are stripped (strip) or not."""

from __future__ import annotations

import pytest

from slml.bundle.variants import keeps_sources, keeps_symbols
from slml.config import parse_config
from slml.errors import ConfigError

BASE = "name: iris\nmodel: artifacts/iris\n"


def test_the_default_is_auto_and_keep_is_the_way_back() -> None:
    assert parse_config(BASE).requirements.source_code == "auto"
    assert not keeps_sources(parse_config(BASE).requirements)
    kept = parse_config(f"{BASE}requirements: {{source_code: keep}}\n").requirements
    assert kept.source_code == "keep" and keeps_sources(kept)
    assert not keeps_sources(None)  # a build with no slml.yaml


def test_it_sits_beside_the_requirement_changes() -> None:
    text = f"{BASE}requirements:\n  add: [lightgbm==4.5.0]\n  source_code: keep\n"
    changes = parse_config(text).requirements
    assert changes.add == ["lightgbm==4.5.0"] and changes.source_code == "keep"


@pytest.mark.parametrize(("value", "shown"), [("all", "'all'"), ("bytecode", "'bytecode'"),
                                             ("true", "True")])  # fmt: skip
def test_any_other_value_names_the_key_and_the_choices(value: str, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"{BASE}requirements: {{source_code: {value}}}\n")
    expected = f"requirements.source_code: {shown} is not allowed; expected 'auto' or 'keep'"
    assert expected in str(info.value)


def test_a_misspelt_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"requirements\.sources: unknown key"):
        parse_config(f"{BASE}requirements: {{sources: keep}}\n")


def test_symbols_default_to_strip_and_keep_is_the_way_back() -> None:
    assert parse_config(BASE).requirements.symbols == "strip"
    assert not keeps_symbols(parse_config(BASE).requirements) and not keeps_symbols(None)
    kept = parse_config(f"{BASE}requirements: {{symbols: keep, source_code: keep}}\n")
    assert keeps_symbols(kept.requirements) and keeps_sources(kept.requirements)


@pytest.mark.parametrize(("value", "shown"), [("debug", "'debug'"), ("false", "False")])
def test_symbols_any_other_value_names_the_key_and_the_choices(value: str, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"{BASE}requirements: {{symbols: {value}}}\n")
    expected = f"requirements.symbols: {shown} is not allowed; expected 'strip' or 'keep'"
    assert expected in str(info.value)
