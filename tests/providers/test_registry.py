"""The registry checks a plug-in's shape when it loads it and names its package;
a third-party provider's section of slml.yaml is validated by its own model."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml.config import ProjectConfig, parse_config
from slml.errors import ConfigError, ProviderUnavailable
from slml.providers import registry
from slml.state import ProjectState
from tests.plugins import dist_info, docker_plugin

BASE = "name: iris\nmodel: model\n"


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in docker_plugin(tmp_path / "site"):
        monkeypatch.syspath_prepend(str(path))


def test_the_built_ins_are_checked_and_load(tmp_path):
    for name in ("local", "aws", "sagemaker", "gcp", "azure"):
        cls = registry.provider_class(name)
        assert cls.name == name and registry.shape_problems(cls, name=name) == []


def test_a_third_party_provider_is_registered_with_its_section(docker):
    from slml_provider_docker import DockerConfig, DockerProvider

    assert "docker" in registry.available()
    assert isinstance(registry.get_provider("docker"), DockerProvider)
    config = parse_config(BASE + "provider: docker\ndocker: {port: 9090}\n")
    assert isinstance(config.docker, DockerConfig) and config.docker.port == 9090
    assert config.section("docker") is config.docker
    assert parse_config(BASE).section("docker") == DockerConfig()  # defaulted


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("docker: {prot: 9090}", "docker.prot: unknown key"),
        ("docker: {port: 80}", "docker.port: 80 is out of range"),
        ("docker: {python_version: '2.7'}", "docker.python_version: '2.7' is not allowed"),
        ("docker: 5", "docker: Input should be a valid dictionary"),
    ],
)
def test_its_own_model_names_the_key_path(docker, section, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + section + "\n")
    assert expected in str(info.value)


def test_without_the_plug_in_its_section_is_an_unknown_key_naming_the_installed():
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "docker: {port: 9090}\n")
    message = str(info.value)
    assert "docker: unknown key" in message
    assert "providers' sections: " in message and "aws" in message and "local" in message
    with pytest.raises(ConfigError, match="provider: 'docker' is not allowed; expected 'local'"):
        parse_config(BASE + "provider: docker\n")


def test_section_errors_and_core_errors_are_reported_together(docker):
    with pytest.raises(ConfigError) as info:
        parse_config("name: Bad\nmodel: m\naws: {memry: 1}\ndocker: {prot: 1}\n")
    message = str(info.value)
    assert "name: 'Bad' is not a valid name" in message
    assert "aws.memry: unknown key" in message and "docker.prot: unknown key" in message


def test_a_section_built_in_code_is_validated_too(docker, tmp_path):
    from slml_provider_docker import DockerConfig

    config = ProjectConfig(name="iris", model=tmp_path, docker=DockerConfig(port=9000))
    assert config.docker.port == 9000 and config.with_overrides(stage="prod").docker.port == 9000
    with pytest.raises(ValueError, match="nope: unknown key"):
        ProjectConfig(name="iris", model=tmp_path, nope={})


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("class Broken:\n    name = 'broken'\n    config_model = dict\n"
         "    def build(self): ...\n    def plan(self): ...\n    def deploy(self): ...\n"
         "    def destroy(self): ...\n", "config_model is <class 'dict'>, not a pydantic model"),
        ("from pydantic import BaseModel\nclass Broken:\n    name = 'other'\n"
         "    config_model = BaseModel\n", "its name is 'other', not its entry point's name"),
        ("from pydantic import BaseModel\nclass Broken:\n    name = 'broken'\n"
         "    config_model = BaseModel\n", "it has no method build, plan, deploy, destroy"),
        ("Broken = 42\n", "it is a int, not a class"),
        ("from pydantic import BaseModel\nclass Broken:\n    name = 'broken'\n"
         "    config_model = BaseModel\n    def build(self): ...\n    def plan(self): ...\n"
         "    def deploy(self): ...\n    def destroy(self): ...\n",
         "it does not subclass slml.providers.base.ProviderBase"),
        ("from pydantic import BaseModel\nfrom slml.providers.base import ProviderBase\n"
         "class Broken(ProviderBase):\n    name = 'broken'\n    config_model = BaseModel\n"
         "    def build(self): ...\n",
         "it has no method plan, deploy, destroy"),
    ],
)  # fmt: skip
def test_a_plug_in_of_the_wrong_shape_is_named_with_its_package(
    tmp_path, monkeypatch, source, problem
):
    site = dist_info(tmp_path / "site", "acme-broken", {"broken": "acme_broken:Broken"})
    (site / "acme_broken.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(__import__("sys").modules, "acme_broken", raising=False)
    with pytest.raises(ProviderUnavailable) as info:
        registry.get_provider("broken")
    message = str(info.value)
    assert problem in message
    assert "entry point broken = acme_broken:Broken" in message and "acme-broken 0.1.0" in message
    assert "acme-broken" in (info.value.hint or "")
    with pytest.raises(ProviderUnavailable, match="wrong shape"):  # its section too
        parse_config(BASE + "broken: {}\n")


def test_an_entry_point_to_a_missing_attribute_is_named(tmp_path, monkeypatch):
    site = dist_info(tmp_path / "site", "acme-typo", {"typo": "acme_typo:Nope"})
    (site / "acme_typo.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ProviderUnavailable, match="cannot be loaded from its entry point typo"):
        registry.get_provider("typo")


def test_the_docker_plan_is_in_words(docker, tmp_path):
    from slml.pipeline import Bundle, ProviderContext, SizeReport

    config = parse_config(BASE + "provider: docker\ndocker: {port: 9090}\n", base_dir=tmp_path)
    ctx = ProviderContext(config=config, state=ProjectState(tmp_path))
    bundle = Bundle(provider="docker", path=tmp_path / "context", lock_hash="l" * 64,
                    model_sha256="m" * 64, python_version="3.12", platform="linux/amd64",
                    size=SizeReport(unzipped=1))  # fmt: skip
    plan = registry.get_provider("docker").plan(ctx=ctx, bundle=bundle)
    assert plan.provider == "docker" and plan.kind == "local"
    assert any("--network host -e PORT=9090 -e SLML_HOST=127.0.0.1" in s for s in plan.steps)
    assert registry.get_provider("docker").status(ctx=ctx).state == "not-deployed"
