"""Virtual environments for bundles, one per lock, cached and shared.

``ensure_env`` builds ``<cache>/envs/<lock.hash>`` with ``uv venv`` + ``uv pip
install``. It builds in a staging directory (``slml.bundle.staging``) and renames it
into place, marking it complete with a sentinel file, under a per-hash file lock, so
concurrent builders neither collide nor ever see half an environment. A build killed
mid-install leaves its staging directory; the next build sweeps it (and those of any
other dead builder). This env belongs to the bundle; it is not slml's own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from slml.bundle.lock import Lock
from slml.bundle.staging import make_staging_dir, sweep
from slml.bundle.uvtool import Runner, run_uv

SENTINEL = ".slml-env-complete"
_LOCK_TIMEOUT = 1800.0


def env_path(lock: Lock, *, cache_dir: Path) -> Path:
    """Where the environment for ``lock`` lives (it may not exist yet)."""
    return Path(cache_dir) / "envs" / lock.hash


def env_is_ready(lock: Lock, *, cache_dir: Path) -> bool:
    """True when the environment for ``lock`` exists and was completely built."""
    return (env_path(lock, cache_dir=cache_dir) / SENTINEL).is_file()


def env_python(env: Path) -> Path:
    """The interpreter of an environment built by ``ensure_env``."""
    return Path(env) / "bin" / "python"


def ensure_env(
    lock: Lock,
    *,
    cache_dir: Path,
    python: str = sys.executable,
    runner: Runner = subprocess.run,
) -> Path:
    """The path of a complete environment with exactly ``lock`` installed.

    Idempotent: reused when complete, built otherwise (blocking while another process
    builds the same one). Raises PackagingError when uv fails; nothing half-built is
    left under the final path.
    """
    final = env_path(lock, cache_dir=cache_dir)
    if (final / SENTINEL).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{lock.hash}.lock"), timeout=_LOCK_TIMEOUT):
        if (final / SENTINEL).is_file():
            return final
        sweep(final.parent, claimed=final.name)  # what killed builds left behind
        _build(lock, final=final, python=python, runner=runner)
    return final


def _build(lock: Lock, *, final: Path, python: str, runner: Runner) -> None:
    tmp = make_staging_dir(final)
    try:
        run_uv(["venv", "--quiet", "--relocatable", "--python", python, str(tmp)], runner=runner)
        run_uv(
            [
                "pip",
                "install",
                "--quiet",
                "--compile-bytecode",
                "--python",
                str(env_python(tmp)),
                "-r",
                str(lock.path),
            ],
            runner=runner,
        )
        (tmp / SENTINEL).write_text(lock.hash + "\n", encoding="utf-8")
        if final.exists():  # an incomplete leftover from a crashed build
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
