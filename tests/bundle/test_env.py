from __future__ import annotations

import subprocess
import threading
import time
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


# -- a build killed with SIGKILL (issue 11 D28) ---------------------------------------------

KILLED_BUILDER = """
import subprocess, sys, time
from pathlib import Path
from slml.bundle.env import ensure_env
from slml.bundle.lock import read_lock

def runner(command, **kwargs):
    if command[1:3] != ["pip", "install"]:
        return subprocess.run(command, **kwargs)
    print("INSTALLING", flush=True)
    result = subprocess.run(command, **kwargs)  # the parent kills us during this
    print("INSTALLED", flush=True)
    time.sleep(600)  # or here: after the install, before the rename
    return result

ensure_env(read_lock(Path(sys.argv[1])), cache_dir=Path(sys.argv[2]), runner=runner)
"""


def kill_mid_install(lock: Lock, cache: Path) -> None:
    """Run a real build in a child process and SIGKILL its whole process group (uv too)
    while ``uv pip install`` is writing the environment."""
    import os
    import signal
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILDER, str(lock.path), str(cache)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "INSTALLING"
        envs = cache / "envs"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(envs.glob(".*/lib/python*/site-packages/*")):
            time.sleep(0.01)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def staged(cache: Path) -> list[Path]:
    return [p for p in (cache / "envs").iterdir() if p.name.startswith(".") and p.is_dir()]


def test_a_killed_build_leaves_nothing_the_next_build_keeps(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "joblib==1.4.2\nthreadpoolctl==3.5.0\n")
    cache = tmp_path / "cache"
    kill_mid_install(lock, cache)
    leftovers = staged(cache)
    assert leftovers, "the killed build should have left its staging directory"
    assert not env_is_ready(lock, cache_dir=cache)  # never mistaken for a finished env
    env = ensure_env(lock, cache_dir=cache)
    assert env_is_ready(lock, cache_dir=cache) and env.name == lock.hash
    assert staged(cache) == []  # the next build swept what the killed one left


def test_leftovers_of_dead_builders_are_swept_by_any_build(tmp_path: Path) -> None:
    import os

    cache = tmp_path / "cache"
    envs = cache / "envs"
    gone = envs / f".otherhash.tmp-{2**22 + 12345}-0123abcd"  # no such pid
    mine = envs / f".busyhash.tmp-{os.getpid()}-89abcdef"  # a live builder's
    for path in (gone, mine):
        (path / "lib").mkdir(parents=True)
    ensure_env(_lock(tmp_path, "joblib==1.4.2\n"), cache_dir=cache)
    assert not gone.exists() and mine.is_dir()
