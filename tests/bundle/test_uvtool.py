from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from slml.bundle import cache_dir
from slml.bundle.uvtool import find_uv, run_uv, stderr_tail
from slml.errors import PackagingError


def test_find_uv_returns_an_executable() -> None:
    assert Path(find_uv()).is_file()


def test_run_uv_returns_the_completed_process() -> None:
    done = run_uv(["--version"])
    assert done.stdout.startswith("uv ")


def test_run_uv_failure_names_the_command_and_quotes_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "nope.in"
    with pytest.raises(PackagingError) as err:
        run_uv(["pip", "compile", str(missing)])
    message = str(err.value)
    assert f"`uv pip compile {missing}` failed with exit code" in message
    assert "nope.in" in message.split("\n", 1)[1]


def test_run_uv_uses_the_injected_runner() -> None:
    calls = []

    def runner(command, **kwargs):
        calls.append((command, kwargs))
        return subprocess.CompletedProcess(command, 3, "", "line1\n\nboom\n")

    with pytest.raises(PackagingError, match="exit code 3:\nline1\nboom"):
        run_uv(["venv", "x"], runner=runner, env={"EXTRA": "1"}, input="a")
    command, kwargs = calls[0]
    assert command[1:] == ["venv", "x"]
    assert kwargs["env"]["EXTRA"] == "1" and kwargs["input"] == "a"


def test_run_uv_wraps_a_runner_that_cannot_start() -> None:
    def runner(command, **kwargs):
        raise FileNotFoundError(command[0])

    with pytest.raises(PackagingError, match="could not start uv"):
        run_uv(["--version"], runner=runner)


def test_stderr_tail_keeps_the_last_non_empty_lines() -> None:
    text = "\n".join(str(i) for i in range(30)) + "\n\n"
    assert stderr_tail(text, 3) == "27\n28\n29"
    assert stderr_tail(b"a\nb", 1) == "b"
    assert stderr_tail(None) == ""


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SLML_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "slml"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "slml"
