"""Run ``uv`` (the PyPI package's binary, else the one on PATH) with typed failures."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from slml.errors import PackagingError

Runner = Callable[..., subprocess.CompletedProcess[str]]
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


def with_sources(args: list[str], input: str | None = None) -> list[str]:
    """``args`` with the project's package sources (slml/bundle/sources.py) after
    ``pip compile``/``pip install``, chosen for the requirements being resolved
    (``input``) or installed (``-r FILE``)."""
    if args[:1] != ["pip"] or args[1:2] not in (["compile"], ["install"]):
        return args
    from slml.bundle.sources import uv_args

    return [*args[:2], *uv_args(_requirement_names(args, input)), *args[2:]]


def _requirement_names(args: list[str], input: str | None) -> set[str]:
    from slml.bundle.lock import requirement_name

    texts = [input or ""]
    for flag, value in itertools.pairwise(args):
        if flag in ("-r", "--requirement") and value != "-":
            with contextlib.suppress(OSError):
                texts.append(Path(value).read_text(encoding="utf-8"))
    lines = [line.split("#", 1)[0].strip() for text in texts for line in text.splitlines()]
    return {requirement_name(line) for line in lines if line and not line.startswith("-")}


def run_uv(
    args: Sequence[str],
    *,
    runner: Runner = subprocess.run,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``uv <args>`` to completion, capturing its output.

    Raises PackagingError naming the command and quoting the tail of uv's stderr when
    it exits non-zero or cannot be started. ``env`` is added to this process's
    environment (it does not replace it).
    """
    command = [find_uv(), *with_sources([str(a) for a in args], input)]
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
