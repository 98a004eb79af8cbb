from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from slml.bundle.env import SENTINEL, ensure_env, env_is_ready, env_path, env_python
from slml.bundle.lock import Lock, read_lock
from slml.errors import PackagingError


def _lock(tmp_path: Path, text: str) -> Lock:
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    return read_lock(path)


def _counting_runner(calls: list[list[str]]):
    def runner(command, **kwargs):
        calls.append(command[1:])
        return subprocess.run(command, **kwargs)

    return runner


def test_env_is_built_once_and_reused(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "joblib==1.4.2\n")
    cache = tmp_path / "cache"
    assert not env_is_ready(lock, cache_dir=cache)
    env = ensure_env(lock, cache_dir=cache)
    assert env == env_path(lock, cache_dir=cache) == cache / "envs" / lock.hash
    assert (env / SENTINEL).is_file() and env_is_ready(lock, cache_dir=cache)
    out = subprocess.run(
        [env_python(env), "-c", "import joblib, sys; print(joblib.__version__, sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    version, prefix = out.stdout.split()
    assert version == "1.4.2" and Path(prefix) == env  # its own env, not slml's

    def no_uv(*args, **kwargs):
        raise AssertionError("a complete env must be reused without uv")

    assert ensure_env(lock, cache_dir=cache, runner=no_uv) == env


def test_concurrent_builders_build_one_env(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "joblib==1.4.2\n")
    cache = tmp_path / "cache"
    calls: list[list[str]] = []
    results: list[Path] = []
    runner = _counting_runner(calls)
    threads = [
        threading.Thread(
            target=lambda: results.append(ensure_env(lock, cache_dir=cache, runner=runner))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert sum(1 for c in calls if c[0] == "venv") == 1
    assert [p.name for p in (cache / "envs").iterdir() if not p.name.endswith(".lock")] == [
        lock.hash
    ]


def test_failed_install_leaves_nothing_behind(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "joblib==0.0.999\n")
    cache = tmp_path / "cache"
    with pytest.raises(PackagingError, match="uv pip install"):
        ensure_env(lock, cache_dir=cache)
    assert not env_path(lock, cache_dir=cache).exists()
    leftovers = [p for p in (cache / "envs").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_incomplete_env_is_rebuilt(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "joblib==1.4.2\n")
    cache = tmp_path / "cache"
    half = env_path(lock, cache_dir=cache)
    half.mkdir(parents=True)
    (half / "junk").write_text("a crashed build")
    env = ensure_env(lock, cache_dir=cache)
    assert (env / SENTINEL).is_file() and not (env / "junk").exists()
