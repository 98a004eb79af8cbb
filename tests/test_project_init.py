"""slml init's logic without the CLI: name, model path, provider, refusal to clobber."""

from __future__ import annotations

import pytest

from slml.config import load_config
from slml.errors import ConfigError, UsageError
from slml.project_init import init_project, model_reference, project_name


def test_writes_a_config_that_loads(tmp_path):
    (tmp_path / "artifacts" / "My Model").mkdir(parents=True)
    written = init_project(model=tmp_path / "artifacts" / "My Model", cwd=tmp_path,
                           provider="aws")  # fmt: skip
    assert written.path == tmp_path / "slml.yaml" and written.model_exists
    config = load_config(written.path)
    assert config.name == "my-model" and config.provider == "aws"
    assert "model: artifacts/My Model" in written.path.read_text()


def test_refuses_to_overwrite_unless_forced(tmp_path):
    init_project(model=tmp_path / "iris", cwd=tmp_path)
    with pytest.raises(UsageError, match="already exists"):
        init_project(model=tmp_path / "iris", cwd=tmp_path)
    assert not init_project(model=tmp_path / "iris", cwd=tmp_path, force=True).model_exists


def test_an_unknown_provider_or_a_bad_name_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match=r"--provider 'nope' is not one of .*local"):
        init_project(model=tmp_path / "iris", cwd=tmp_path, provider="nope")
    with pytest.raises(ConfigError, match="name"):
        init_project(model=tmp_path / "iris", cwd=tmp_path, name="Bad Name")
    assert not (tmp_path / "slml.yaml").exists()


def test_names_and_paths(tmp_path):
    assert project_name(tmp_path / "__") == "model"
    assert model_reference(tmp_path / "a", tmp_path) == "a"
    assert model_reference(tmp_path, tmp_path / "elsewhere") == str(tmp_path.resolve())
