"""The local bundle: a self-contained directory that runs on this machine.

Layout of ``out_dir``::

    slml-bundle.json    slml version, target, python, platform, lock hash, model
                        digest, sha256 of every file under app/
    requirements.lock   every pinned requirement (runtime + model)
    app/slml/...        the serving runtime (copy_runtime)
    model/...           a verified copy of the model artifact

The environment that runs it is cached by the lock's hash (``env.ensure_env``) and
recorded in ``Bundle.files["env"]``. Builds happen in a temporary sibling directory
and are swapped in at the end, so a failed build leaves the previous bundle intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

import slml
from slml.artifact.store import copy_artifact, verified_manifest
from slml.bundle import cache_dir as default_cache_dir
from slml.bundle.env import ensure_env, env_is_ready
from slml.bundle.lock import Target, read_lock, resolve_lock, runtime_requirements
from slml.bundle.runtime_files import copy_runtime
from slml.bundle.staging import make_staging_dir, sweep
from slml.bundle.uvtool import Runner
from slml.bundle.variants import model_requirements
from slml.errors import PackagingError
from slml.pipeline import Bundle, NullReporter, Reporter, SizeReport
from slml.runtime.manifest import artifact_digest, hash_tree
from slml.units import megabytes

BUNDLE_MANIFEST = "slml-bundle.json"
LOCK_FILE = "requirements.lock"


@contextlib.contextmanager
def bundle_lock(out_dir: Path) -> Iterator[None]:
    """Held while a bundle directory is swapped in or copied out."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir.parent / f".{out_dir.name}.lock"), timeout=600):
        yield


def build_local_bundle(
    *,
    artifact_dir: Path,
    out_dir: Path,
    target: Target | None = None,
    reporter: Reporter | None = None,
    cache_dir: Path | None = None,
    runner: Runner = subprocess.run,
    requirements_changes: Any = None,
) -> Bundle:
    """Build (or rebuild) the bundle for ``artifact_dir`` at ``out_dir`` (its
    requirements changed by slml.yaml's ``requirements:``, ``requirements_changes``).

    Blocking; reuses the cached lock and environment when the requirements did not
    change. Raises ArtifactError/IntegrityError for a bad artifact (before anything is
    written) and PackagingError when dependencies cannot be resolved or installed.
    """
    target = target or Target.here()
    reporter = reporter or NullReporter()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    manifest = verified_manifest(artifact_dir)
    model_reqs, _notes = model_requirements(manifest, requirements_changes, cpu=False)
    requirements = runtime_requirements() + model_reqs
    reporter.step(f"resolving {len(requirements)} requirements for {target.describe()}")
    started = time.perf_counter()
    lock = resolve_lock(requirements, target=target, cache_dir=cache, runner=runner)
    reporter.detail(f"{len(lock.pins)} pins, lock {lock.hash[:12]}" + _cached(lock.reused))
    reused_env = env_is_ready(lock, cache_dir=cache)
    reporter.step("installing dependencies" + (" (cached environment)" if reused_env else ""))
    env = ensure_env(lock, cache_dir=cache, runner=runner)
    reporter.step(f"copying model {manifest['name']} {manifest['version']}")
    model_sha = artifact_digest(manifest)
    info = _bundle_info(manifest, target=target, lock_hash=lock.hash, model_sha=model_sha)
    _assemble(Path(artifact_dir), Path(out_dir), lock_path=lock.path, info=info, manifest=manifest)
    size = measure(Path(out_dir), env)
    reporter.detail(f"built in {time.perf_counter() - started:.2f} s; {describe_size(size)}")
    return Bundle(
        provider="local",
        path=Path(out_dir),
        lock_hash=lock.hash,
        model_sha256=model_sha,
        python_version=target.python_version,
        platform=target.platform or "host",
        size=size,
        files={"env": env, "lock": Path(out_dir) / LOCK_FILE},
        notes=(f"environment {env}",),
        reused=lock.reused and reused_env,
    )


def _cached(reused: bool) -> str:
    return " (cached)" if reused else ""


def _bundle_info(
    manifest: dict[str, Any], *, target: Target, lock_hash: str, model_sha: str
) -> dict[str, Any]:
    return {
        "format": 1,
        "slml_version": slml.__version__,
        "target": target.name,
        "python_version": target.python_version,
        "platform": target.platform or "host",
        "lock_hash": lock_hash,
        "model": {"name": manifest["name"], "version": manifest["version"], "sha256": model_sha},
    }


def _assemble(
    artifact_dir: Path, out_dir: Path, *, lock_path: Path, info: dict[str, Any],
    manifest: dict[str, Any],
) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep(out_dir.parent)  # what builds killed with SIGKILL left behind
    tmp = make_staging_dir(out_dir)
    tmp.chmod(0o755)
    try:
        shutil.copyfile(lock_path, tmp / LOCK_FILE)
        copy_runtime(tmp / "app")
        copy_artifact(artifact_dir, tmp / "model", manifest=manifest)
        info = {**info, "app_files": hash_tree(tmp / "app")}
        (tmp / BUNDLE_MANIFEST).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        with bundle_lock(out_dir):
            _swap(tmp, out_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)


def _swap(new: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` with ``new``; the old one is removed only once ``new`` is in."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(out_dir, old)
    try:
        os.replace(new, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_bundle_info(path: Path) -> dict[str, Any]:
    """The parsed ``slml-bundle.json`` of a bundle directory. Raises PackagingError."""
    file = Path(path) / BUNDLE_MANIFEST
    try:
        info: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        return info
    except (OSError, ValueError) as exc:
        raise PackagingError(
            f"{path} is not a complete local bundle ({BUNDLE_MANIFEST}: {exc})",
            hint="rebuild it with `slml build --provider local`",
        ) from None


def load_bundle(path: Path, *, cache_dir: Path | None = None) -> Bundle:
    """A Bundle for an existing bundle directory, re-creating its environment when the
    cache was cleared. Raises PackagingError for a directory that is not a bundle."""
    info = read_bundle_info(path)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    lock = read_lock(Path(path) / LOCK_FILE)
    env = ensure_env(lock, cache_dir=cache)
    return Bundle(
        provider="local",
        path=Path(path),
        lock_hash=info["lock_hash"],
        model_sha256=info["model"]["sha256"],
        python_version=info["python_version"],
        platform=info["platform"],
        size=measure(Path(path), env),
        files={"env": env, "lock": lock.path},
        reused=True,
    )


# -- sizes ---------------------------------------------------------------------------
def dir_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def package_sizes(env: Path) -> list[tuple[str, int]]:
    """(distribution, installed bytes) for every package in ``env``, biggest first,
    summed from each ``*.dist-info/RECORD``."""
    sizes: list[tuple[str, int]] = []
    for record in Path(env).glob("lib/python*/site-packages/*.dist-info/RECORD"):
        name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        total = 0
        for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
            size = line.rsplit(",", 1)[-1]
            total += int(size) if size.isdigit() else 0
        sizes.append((name, total))
    return sorted(sizes, key=lambda item: -item[1])


def measure(bundle_dir: Path, env: Path) -> SizeReport:
    """Unzipped size of the bundle plus its environment's packages."""
    packages = package_sizes(env)
    parts = {
        "app": dir_size(bundle_dir / "app"),
        "model": dir_size(bundle_dir / "model"),
        "env": sum(size for _name, size in packages),
    }
    return SizeReport(unzipped=sum(parts.values()), largest=tuple(packages[:8]), parts=parts)


def describe_size(size: SizeReport) -> str:
    """One line: total and the largest packages, in MB."""
    top = ", ".join(f"{name} {megabytes(n)}" for name, n in size.largest[:3])
    return f"{megabytes(size.unzipped)} unzipped (largest: {top or 'none'})"
