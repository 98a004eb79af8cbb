"""slml.yaml's ``requirements:`` changes what a bundle installs (never the artifact),
and CPU-only targets get the CPU variant unless the user chose otherwise."""

from __future__ import annotations

import pytest

from slml.bundle.variants import model_requirements
from slml.config import parse_config
from slml.errors import ConfigError

MANIFEST = {"requirements": ["xgboost==3.2.0", "numpy==2.4.6", "pyarrow==26.0.1"]}


def _config(section: str):
    return parse_config(f"name: demo\nmodel: artifact\nrequirements:\n{section}").requirements


def test_remove_replace_add_then_cpu_variants() -> None:
    changes = _config("  remove: [pyarrow]\n  add: ['orjson==3.10.7']\n")
    reqs, notes = model_requirements(MANIFEST, changes, cpu=True)
    assert reqs == ["xgboost-cpu==3.2.0", "numpy==2.4.6", "orjson==3.10.7"]
    assert "removed pyarrow" in notes[0] and "xgboost-cpu" in notes[1]
    assert model_requirements(MANIFEST, changes, cpu=False)[0][0] == "xgboost==3.2.0"


def test_a_requirement_the_user_chose_is_kept() -> None:
    changes = _config("  replace: {xgboost: 'xgboost==3.2.0'}\n")
    reqs, _ = model_requirements(MANIFEST, changes, cpu=True)
    assert reqs[0] == "xgboost==3.2.0"


def test_mistakes_are_named() -> None:
    with pytest.raises(ConfigError, match=r"requirements\.add"):
        _config("  add: ['==1.0']\n")
    with pytest.raises(ConfigError, match=r"requirements\.colour"):
        _config("  colour: red\n")
    with pytest.raises(ConfigError, match="cannot remove or replace tensorflow"):
        model_requirements(MANIFEST, _config("  remove: [tensorflow]\n"), cpu=False)
