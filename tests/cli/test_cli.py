"""The CLI's contract: one clear message and exit 2 for every bad input, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slml.cli import main
from slml.config import load_config


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("slml ")
    code, out, _ = run(["deploy", "--help"], capsys)
    assert code == 0 and "--provider" in out and "--stage" in out


def test_missing_config(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["status"], capsys)
    assert code == 2
    assert "no slml.yaml found" in err and "slml init" in err
    assert "Traceback" not in err


def test_invalid_config_names_key(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "slml.yaml").write_text("name: iris\nmodel: m\naws: {memory: 99999}\n")
    code, _, err = run(["build", "--provider", "aws"], capsys)
    assert code == 2
    assert "aws.memory: 99999 is out of range" in err
    assert "Traceback" not in err


def test_unknown_provider_flag(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "slml.yaml").write_text("name: iris\nmodel: m\n")
    code, _, err = run(["status", "--provider", "heroku"], capsys)
    assert code == 2 and "provider: 'heroku' is not allowed" in err


def test_missing_model_is_a_config_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "slml.yaml").write_text("name: iris\nmodel: nowhere\n")
    code, _, err = run(["build"], capsys)
    assert code == 2 and "model:" in err and "does not exist" in err


def test_bad_usage_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["deploy", "--no-such-flag"], capsys)
    assert code == 2 and "No such option" in err
    code, _, err = run(["invoke", "{bad json"], capsys)
    assert code == 2 and "not valid JSON" in err


def test_init_writes_a_valid_commented_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "artifacts" / "my_model").mkdir(parents=True)
    code, out, _ = run(["init", "artifacts/my_model"], capsys)
    assert code == 0 and "wrote" in out
    text = (project / "slml.yaml").read_text()
    assert "# slml.yaml" in text and "aws:" in text and "azure:" in text
    config = load_config(project / "slml.yaml")
    assert config.name == "my-model"
    assert config.model == (project / "artifacts" / "my_model").resolve()
    code, _, err = run(["init", "artifacts/my_model"], capsys)
    assert code == 2 and "already exists" in err and "--force" in err


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("slml")
    result = subprocess.run([str(exe), "status"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "no slml.yaml found" in result.stderr
    assert "Traceback" not in result.stderr


def test_messages_with_brackets_are_printed_literally(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich markup must not eat user data: a stage error quotes a pattern-like value."""
    (project / "slml.yaml").write_text("name: iris\nmodel: m\nstage: '[a-z]x'\n")
    code, _, err = run(["status"], capsys)
    assert code == 2
    assert "stage: '[a-z]x' is not a valid stage" in err


def test_destroy_with_nothing_deployed_says_so_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "slml.yaml").write_text("name: iris\nmodel: m\n")
    code, out, err = run(["destroy"], capsys)
    assert code == 0
    assert "nothing to destroy" in out + err
    assert "destroyed" not in out + err
