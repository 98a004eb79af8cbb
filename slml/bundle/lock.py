"""Resolve a model's requirements into a pinned lock for one target, cached.

A lock is a ``requirements.lock`` file of exact pins produced by ``uv pip compile``.
Locks are cached under ``<cache>/locks/<key>.txt`` where ``key`` hashes the sorted,
normalised requirements and the target's Python version and platform, so an
unchanged model resolves without touching the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from slml.bundle import sources
from slml.bundle.bytecode_only import requirement_name as requirement_name  # re-exported
from slml.bundle.staging import staging_path, sweep
from slml.bundle.uvtool import Runner, run_uv, stderr_tail
from slml.errors import PackagingError, ResolveError

# slml/runtime/protocol.py subclasses uvicorn's HTTP protocols: bundles get the minor
# series it was tested with, never a newer uvicorn whose internals may have moved. The
# runtime is plain ASGI on uvicorn (no Starlette since the fast path, #14); orjson,
# uvloop and httptools are the fast JSON, event loop and HTTP parser it uses where
# installed (h11 and asyncio otherwise). The Lambda layer leaves uvloop and httptools
# out (slml/bundle/slim.py: LAMBDA_UNUSED): no HTTP server runs there.
RUNTIME_REQUIREMENTS = ("uvicorn>=0.54,<0.55", "orjson>=3.9",
                        "uvloop>=0.19; sys_platform != 'win32'",
                        "httptools>=0.6.3")  # fmt: skip
EXTRA_REQUIREMENTS = {"lambda": ("mangum>=0.17",), "azure": ("azure-functions>=1.20",)}


@dataclass(frozen=True)
class Target:
    """Where a bundle runs. ``platform`` is uv's ``--python-platform`` value
    (``x86_64-manylinux_2_34``, ``aarch64-manylinux_2_34``, ...); None means this host."""

    name: str
    python_version: str = "3.11"
    platform: str | None = None
    gpu: bool = False  # a GPU target: keep CUDA-capable wheels, never force CPU-only builds

    @classmethod
    def here(cls, name: str = "local") -> Target:
        """This machine and this interpreter's Python version."""
        return cls(name, python_version=f"{sys.version_info.major}.{sys.version_info.minor}")

    def describe(self) -> str:
        return f"Python {self.python_version} on {self.platform or 'this machine'}"


@dataclass(frozen=True)
class Lock:
    """A pinned lock file. ``hash`` covers only the normalised pins (comments and order
    do not matter); ``reused`` says it came from the cache."""

    path: Path
    hash: str
    pins: tuple[str, ...]
    reused: bool = False


def runtime_requirements(extra: Iterable[str] = ()) -> list[str]:
    """What the serving runtime itself needs, plus each named extra's adapter
    (``"lambda"`` → mangum, ``"azure"`` → azure-functions)."""
    out = list(RUNTIME_REQUIREMENTS)
    for name in extra:
        if name not in EXTRA_REQUIREMENTS:
            allowed = ", ".join(sorted(EXTRA_REQUIREMENTS))
            raise ValueError(f"unknown runtime extra {name!r}; expected one of {allowed}")
        out += EXTRA_REQUIREMENTS[name]
    return out


def parse_pins(text: str) -> tuple[str, ...]:
    """The normalised, sorted pin lines of a lock file (comments dropped)."""
    pins = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            pins.add(re.sub(r"\s+", "", line).lower())
    return tuple(sorted(pins))


def pins_hash(pins: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(pins).encode()).hexdigest()


def read_lock(path: Path, *, reused: bool = True) -> Lock:
    """A Lock for an existing lock file. Raises PackagingError when unreadable."""
    try:
        pins = parse_pins(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackagingError(f"cannot read the lock file {path}: {exc}") from None
    return Lock(path=Path(path), hash=pins_hash(pins), pins=pins, reused=reused)


def lock_key(requirements: Sequence[str], target: Target) -> str:
    """The cache key: the requirements (order and spacing ignored), the target and the
    package sources when slml.yaml sets any."""
    normalised = sorted({re.sub(r"\s+", "", r) for r in requirements if r.strip()})
    data = {
        "requirements": normalised,
        "python": target.python_version,
        "platform": target.platform,
        **({"sources": sources.current().key()} if sources.current().key() else {}),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def resolve_lock(
    requirements: Sequence[str],
    *,
    target: Target,
    cache_dir: Path,
    runner: Runner = subprocess.run,
) -> Lock:
    """Pin ``requirements`` for ``target`` with ``uv pip compile``; binary wheels only
    when the target names a platform. Cached by the inputs' hash; safe to call
    concurrently. Raises PackagingError naming the requirement that cannot resolve."""
    locks = Path(cache_dir) / "locks"
    cached = locks / f"{lock_key(requirements, target)}.txt"
    if cached.is_file():
        return read_lock(cached, reused=True)
    locks.mkdir(parents=True, exist_ok=True)
    sweep(locks)  # partial locks of resolves that were killed
    tmp = staging_path(cached)
    try:
        _compile(requirements, target=target, output=Path(tmp), runner=runner)
        os.replace(tmp, cached)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return read_lock(cached, reused=False)


def _compile(requirements: Sequence[str], *, target: Target, output: Path, runner: Runner) -> None:
    # --python skips uv's interpreter discovery (slow behind pyenv shims); the target
    # version still comes from --python-version.
    args = ["pip", "compile", "-", "--python", sys.executable]
    args += ["--python-version", target.python_version]
    if target.platform:
        args += ["--python-platform", target.platform, "--only-binary", ":all:"]
    args += ["--no-header", "--quiet", "-o", str(output)]
    try:
        run_uv(args, runner=runner, input="\n".join(requirements) + "\n")
    except PackagingError as exc:
        raise _resolution_error(requirements, target, str(exc)) from None


_UNREACHABLE = ("failed to fetch", "error sending request", "dns error", "connection refused",
                "tcp connect error", "timed out", "could not connect", "failed to read from")


def _unreachable(uv_said: str) -> ResolveError | None:
    """A ResolveError naming the index uv could not reach, if that is what happened."""
    said = uv_said.lower()
    if not any(word in said for word in _UNREACHABLE):
        return None
    src = sources.current()
    configured = [*src.urls(), sources.TORCH_CPU_INDEX, *src.find_links]
    named = [u for u in configured if sources.expand_safe(u).split("@")[-1].lower() in said]
    where = ", ".join(named) if named else "the package index (PyPI or $UV_INDEX_URL)"
    return ResolveError(
        f"cannot reach {where} to resolve the requirements:\n{stderr_tail(uv_said, 3)}",
        hint="check the network, the URL in slml.yaml's packages: and its credentials "
        "(${VAR} from the environment); offline, point packages.find_links at a directory "
        "of wheels",
    )


def _resolution_error(requirements: Sequence[str], target: Target, uv_said: str) -> PackagingError:
    unreachable = _unreachable(uv_said)
    if unreachable is not None:
        return unreachable
    said = uv_said.lower()
    named = [r for r in requirements if requirement_name(r) in said.replace("_", "-")]
    culprit = ", ".join(named) if named else ", ".join(requirements)
    return ResolveError(
        f"cannot resolve {culprit} for {target.name} ({target.describe()}). "
        f"uv said:\n{stderr_tail(uv_said.split(':', 1)[-1])}",
        hint=(
            "check the requirement's spelling and version (the model's come from its "
            f"manifest's `requirements`), and that it publishes wheels for Python "
            f"{target.python_version}" + (f" on {target.platform}" if target.platform else "")
        ),
    )
