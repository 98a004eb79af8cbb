"""Run ``uv`` (the PyPI package's binary, else the one on PATH) with typed failures."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from slml.errors import PackagingError

Runner = Callable[..., subprocess.CompletedProcess]
_TAIL_LINES = 15


def find_uv() -> str:
    """Path to the uv binary. Raises PackagingError when neither source has one."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise PackagingError(
        "uv is not installed: slml resolves and installs dependencies with it",
        hint="pip install uv (it is a dependency of slml; reinstall slml to get it)",
    )


def stderr_tail(text: str | bytes | None, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a process's output, as one string."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    kept = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_uv(
    args: Sequence[str],
    *,
    runner: Runner = subprocess.run,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``uv <args>`` to completion, capturing its output.

    Raises PackagingError naming the command and quoting the tail of uv's stderr when
    it exits non-zero or cannot be started. ``env`` is added to this process's
    environment (it does not replace it).
    """
    command = [find_uv(), *map(str, args)]
    full_env: dict[str, Any] = {**os.environ, **(env or {})}
    try:
        done = runner(command, capture_output=True, text=True, env=full_env, input=input)
    except OSError as exc:
        raise PackagingError(f"could not start uv ({command[0]}): {exc}") from None
    if done.returncode != 0:
        words = " ".join(["uv", *map(str, args)])
        raise PackagingError(
            f"`{words}` failed with exit code {done.returncode}:\n"
            f"{stderr_tail(done.stderr) or '(no output)'}"
        )
    return done
