"""Package sources: slml.yaml's packages: reaches every uv pip call, uv's variables keep
working, credentials come from the environment only, CPU torch is found without PyPI's
CUDA build, and an index that cannot be reached is named."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slml.bundle import sources
from slml.bundle.lock import Target, lock_key, resolve_lock
from slml.bundle.sources import TORCH_CPU_INDEX, Sources, requirement_lines, uv_args
from slml.bundle.uvtool import run_uv
from slml.config import parse_config
from slml.errors import ConfigError, ResolveError


@pytest.fixture(autouse=True)
def _default_sources(tmp_path: Path) -> Iterator[None]:
    yield
    sources.use_sources(None, base_dir=tmp_path)


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """A find-links directory holding a (name-only) CPU torch wheel."""
    directory = tmp_path / "wheels"
    directory.mkdir()
    (directory / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    return directory


def _pairs(args: list[str]) -> list[tuple[str, str]]:
    return list(zip(args[::2], args[1::2], strict=True))


def test_file_sources_become_uv_flags_with_credentials_from_the_environment() -> None:
    src = Sources(index_url="https://u:${TOKEN}@pypi.corp/simple",
                  extra_index_urls=("https://extra.corp/simple",), find_links=("/w",))  # fmt: skip
    args = uv_args(["six"], sources=src, environ={"TOKEN": "s3cret"})
    assert _pairs(args) == [
        ("--index-url", "https://u:s3cret@pypi.corp/simple"),
        ("--extra-index-url", "https://extra.corp/simple"),
        ("--find-links", "/w"),
    ]
    with pytest.raises(ConfigError) as err:
        uv_args(["six"], sources=src, environ={})
    assert "${TOKEN}" in str(err.value) and "s3cret" not in str(err.value)


def test_uv_variables_keep_working() -> None:
    src = Sources(index_url="https://mirror/simple", find_links=("/w",))
    env = {"UV_INDEX_URL": "https://other/simple", "UV_FIND_LINKS": "/a,/b",
           "UV_EXTRA_INDEX_URL": "https://x/simple https://y/simple"}  # fmt: skip
    pairs = _pairs(uv_args(["six"], sources=src, environ=env))
    assert ("--index-url", "https://mirror/simple") not in pairs  # the environment wins
    assert [v for f, v in pairs if f == "--find-links"] == ["/w", "/a", "/b"]
    assert [v for f, v in pairs if f == "--extra-index-url"] == ["https://x/simple",
                                                                 "https://y/simple"]


def test_cpu_torch_comes_from_a_find_links_wheel_else_pytorchs_cpu_index(
    wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _pairs(uv_args(["torch"], sources=Sources(), environ={"PIP_FIND_LINKS": str(wheels)}))
    assert found == [("--find-links", str(wheels))]
    in_file = uv_args(["torch"], sources=Sources(find_links=(str(wheels),)), environ={})
    assert TORCH_CPU_INDEX not in in_file
    online = _pairs(uv_args(["torch", "numpy"], sources=Sources(), environ={}))
    assert online == [("--extra-index-url", TORCH_CPU_INDEX),
                      ("--index-strategy", "unsafe-best-match")]  # fmt: skip
    for var in ("PIP_FIND_LINKS", "UV_FIND_LINKS", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    assert requirement_lines(["torch"]) == [f"--extra-index-url {TORCH_CPU_INDEX}"]  # pip
    assert uv_args(["numpy"], sources=Sources(), environ={}) == []
    assert uv_args(["torch"], sources=Sources(cpu_torch=False), environ={}) == []
    mirrored = {"UV_INDEX_URL": "https://download.pytorch.org/whl/cpu"}
    assert uv_args(["torch"], sources=Sources(), environ=mirrored) == []


def test_every_uv_pip_call_gets_the_sources(tmp_path: Path, wheels: Path) -> None:
    config = parse_config(f"name: ab\nmodel: m\npackages:\n  find_links: [{wheels.name}]\n")
    sources.use_sources(config.packages, base_dir=tmp_path)  # relative to slml.yaml's dir
    seen: list[list[str]] = []

    def runner(command: list[str], **_: Any) -> subprocess.CompletedProcess:
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    lock = tmp_path / "requirements.lock"
    lock.write_text("torch==2.13.0\nnumpy==2.0.0\n")
    run_uv(["pip", "compile", "-", "-o", "out.txt"], runner=runner, input="torch\n")
    run_uv(["pip", "install", "--target", "t", "-r", str(lock)], runner=runner)
    run_uv(["venv", "x"], runner=runner)
    for command in seen[:2]:
        assert command[1:3] in (["pip", "compile"], ["pip", "install"])
        assert command[3:5] == ["--find-links", str(wheels)]
    assert "--find-links" not in seen[2]


def test_sources_change_the_lock_key_only_when_set(tmp_path: Path) -> None:
    target = Target("local", python_version="3.11")
    before = lock_key(["six"], target)
    config = parse_config("name: ab\nmodel: m\npackages:\n  index_url: https://m/simple\n")
    sources.use_sources(config.packages, base_dir=tmp_path)
    assert lock_key(["six"], target) != before
    sources.use_sources(None, base_dir=tmp_path)
    assert lock_key(["six"], target) == before


def test_container_lines_keep_variables_and_move_local_wheels(wheels: Path, tmp_path: Path) -> None:
    config = parse_config(
        "name: ab\nmodel: m\npackages:\n  index_url: https://u:${TOKEN}@corp/simple\n"
        f"  find_links: [{wheels}]\n"
    )
    sources.use_sources(config.packages, base_dir=tmp_path)
    lines = requirement_lines(["torch"], links_in_context="/app/wheels")
    assert lines == ["--index-url https://u:${TOKEN}@corp/simple", "--find-links /app/wheels"]


@pytest.mark.parametrize("key", ["index_url", "extra_index_urls", "find_links"])
def test_a_password_in_the_file_is_refused_naming_the_key(key: str) -> None:
    url = "https://me:hunter2@corp.example/simple"
    value = url if key == "index_url" else f"[{url}]"
    with pytest.raises(ConfigError) as err:
        parse_config(f"name: ab\nmodel: m\npackages:\n  {key}: {value}\n")
    assert f"packages.{key}" in str(err.value) and "hunter2" not in str(err.value)
    assert "${" in str(err.value)


def test_an_unreachable_index_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    url = "http://127.0.0.1:9/simple"  # the discard port: nothing listens
    config = parse_config(f"name: ab\nmodel: m\npackages:\n  index_url: {url}\n")
    sources.use_sources(config.packages, base_dir=tmp_path)
    with pytest.raises(ResolveError) as err:
        resolve_lock(["six"], target=Target("local"), cache_dir=tmp_path / "cache")
    assert f"cannot reach {url}" in str(err.value)
    assert "find_links" in str(err.value.hint)
