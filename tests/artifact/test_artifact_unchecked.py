"""An artifact saved with the serve check skipped is refused by build / preview /
deploy until it is saved with the check, or the user says to build it anyway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slml import api
from slml.artifact import save_model
from slml.artifact.unchecked import ENV
from slml.cli import main
from slml.errors import ArtifactError


@pytest.fixture
def unchecked_project(tmp_path: Path, iris_clf: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ENV, raising=False)
    save_model(iris_clf, tmp_path / "model", check=False)
    (tmp_path / "slml.yaml").write_text("name: unchecked\nmodel: model\nprovider: local\n")
    return tmp_path


def test_the_manifest_says_whether_the_check_ran(tmp_path: Path, iris: Any, iris_clf: Any) -> None:
    X, _ = iris
    skipped = save_model(iris_clf, tmp_path / "a", check=False).manifest
    passed = save_model(iris_clf, tmp_path / "b", sample_input=X[:2], check=True).manifest
    default = save_model(iris_clf, tmp_path / "c").manifest
    assert (skipped["serve_check"], passed["serve_check"]) == ("skipped", "passed")
    assert default["serve_check"] == "not_run"


def test_build_refuses_an_unchecked_artifact_and_says_how(unchecked_project: Path) -> None:
    with pytest.raises(ArtifactError, match="serve check skipped") as caught:
        api.build(unchecked_project / "slml.yaml")
    hint = caught.value.hint or ""
    assert "without --no-check" in hint and "--allow-unchecked" in hint and ENV in hint


def test_the_cli_refuses_with_exit_2(
    unchecked_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["build", "--config", str(unchecked_project / "slml.yaml")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "refusing to build it" in err and "Traceback" not in err


def test_allowing_it_lets_the_build_go_on(
    unchecked_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "1")
    session = api.open_session(unchecked_project / "slml.yaml", need_model=True)
    assert session.ctx.config.name == "unchecked"
