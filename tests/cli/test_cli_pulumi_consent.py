"""``--yes`` on the commands that may need the Pulumi CLI consents to installing it
(as SLML_INSTALL_PULUMI=yes does), and an explicit SLML_INSTALL_PULUMI=no still wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slml.providers import pulumi_cli
from slml.providers.base import NullReporter
from tests.cli.test_cli import run
from tests.providers.test_pulumi_cli import fake_cli

AWS_PROJECT = "name: iris\nmodel: model\nprovider: aws\naws:\n  region: eu-west-1\n"


@pytest.fixture
def aws_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "slml.yaml").write_text(AWS_PROJECT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(pulumi_cli.CONSENT_VAR, "")  # so what the command sets is undone
    monkeypatch.delenv(pulumi_cli.CONSENT_VAR)
    return tmp_path


@pytest.mark.parametrize("argv", [["promote", "--yes"], ["rollback", "-y"],
                                  ["guard", "--yes"], ["destroy", "--yes"]])
def test_yes_consents_to_the_install(aws_project, capsys, argv) -> None:
    run(argv, capsys)  # nothing is deployed: the command stops, the consent is given
    assert os.environ[pulumi_cli.CONSENT_VAR] == "yes"
    installed: list[str] = []

    def install(root: Path, version: str) -> None:
        installed.append(version)
        fake_cli(root, version)

    env = dict(os.environ)  # ensure_cli puts the CLI on this PATH: not the process's
    ok = pulumi_cli.ensure_cli(NullReporter(), cache=aws_project / "cache", env=env,
                               which=lambda _: None, interactive=lambda: False,
                               install=install)  # fmt: skip
    assert ok and installed == [pulumi_cli.pinned_version()]


def test_deploy_yes_consents_before_the_build(aws_project, capsys) -> None:
    code, _, err = run(["deploy", "--yes"], capsys)  # no model: stops before any build
    assert code != 0 and "model" in err
    assert os.environ[pulumi_cli.CONSENT_VAR] == "yes"


def test_without_yes_no_consent(aws_project, capsys) -> None:
    run(["promote"], capsys)
    assert pulumi_cli.CONSENT_VAR not in os.environ


def test_an_explicit_no_is_kept(aws_project, capsys, monkeypatch) -> None:
    monkeypatch.setenv(pulumi_cli.CONSENT_VAR, "no")
    run(["rollback", "--yes"], capsys)
    assert os.environ[pulumi_cli.CONSENT_VAR] == "no"
    assert not pulumi_cli.ensure_cli(NullReporter(), cache=Path("/nonexistent"),
                                     env=dict(os.environ), which=lambda _: None,
                                     interactive=lambda: False)  # fmt: skip
