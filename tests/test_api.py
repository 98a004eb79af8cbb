"""The pipeline functions: what happens before any build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slml import api
from slml.errors import DeployError, ProviderUnavailable


def test_deploy_without_pulumi_cli_fails_before_building(
    tmp_path: Path, iris_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` anywhere on PATH
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    assert shutil.which("pulumi") is None
    (tmp_path / "slml.yaml").write_text(f"name: iris\nmodel: {iris_artifact}\nprovider: aws\n")
    with pytest.raises(ProviderUnavailable, match="needs the Pulumi CLI") as info:
        api.deploy(tmp_path / "slml.yaml")
    assert "slml preview" in (info.value.hint or "")
    assert not (tmp_path / ".slml" / "builds").exists()  # nothing was built


def test_rollback_on_a_cloud_provider_with_nothing_earlier_says_so(
    tmp_path: Path, iris_artifact: Path
) -> None:
    (tmp_path / "slml.yaml").write_text(f"name: iris\nmodel: {iris_artifact}\nprovider: gcp\n")
    with pytest.raises(DeployError, match="no gcp deployment of an earlier version"):
        api.rollback(tmp_path / "slml.yaml")
