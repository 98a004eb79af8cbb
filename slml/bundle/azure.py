"""The Azure Functions package: the Python v2 programming model, ready to zip-deploy.

Layout of ``<out_dir>/package`` (zipped to ``<out_dir>/package.zip``)::

    function_app.py                     AsgiFunctionApp around the slml runtime app
    host.json                           version 2.0, extension bundle, routePrefix ""
    requirements.txt                    the lock (azure-functions among its pins): what
                                        Azure's tooling and azure-functions-doctor read
    slml/runtime/...                    the serving runtime (copy_runtime)
    model/...                           a verified copy of the model artifact
    .python_packages/lib/site-packages  dependencies, binary wheels for Linux x86_64

Target platform: ``x86_64-manylinux_2_28``. Azure Functions' Linux Python images are
Debian-based (Debian 11 "bullseye", glibc 2.31, and Debian 12 "bookworm", glibc 2.36,
per the azure-functions-docker image tables), so glibc 2.28 wheels load on every one of
them while newer manylinux tags might not. The Python version is the app's
(``azure.python_version``); azure-functions stays on 1.x, the line for Python ≤ 3.12.

Dependencies are installed once per (lock hash, Python version, platform) into the
cache (``<cache>/azure/<key>/site-packages``), ELF-checked, slimmed, zipped
(``deps.zip``) and measured there. A package zip is a copy of ``deps.zip`` with the app
and model appended, so a model-only change re-zips only the model and the runtime;
a rebuild with nothing changed reuses the previous package (see incremental.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from slml.artifact.store import copy_artifact, verified_manifest
from slml.bundle import cache_dir as default_cache_dir
from slml.bundle.elf import check_binaries
from slml.bundle.incremental import (
    artifact_inputs,
    digest,
    forget,
    load_record,
    record_path,
    runtime_digest,
    save_record,
    zip_onto,
)
from slml.bundle.install import install_for_target
from slml.bundle.lambda_layer import layer_key
from slml.bundle.lock import Lock, Target, resolve_lock, runtime_requirements
from slml.bundle.runtime_files import copy_runtime
from slml.bundle.size import files_under, measure, zip_dir
from slml.bundle.slim import slim
from slml.bundle.staging import make_staging_dir, sweep
from slml.bundle.uvtool import Runner
from slml.bundle.variants import model_requirements
from slml.pipeline import Bundle, NullReporter, Reporter, SizeReport
from slml.runtime.manifest import artifact_digest
from slml.templates import render
from slml.units import megabytes

AZURE_MACHINE = "x86_64"
AZURE_PLATFORM = "x86_64-manylinux_2_28"
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"
MODEL_DIR = "model"
#: azure-functions 1.x is the line for Python 3.10-3.12 (2.x is for 3.13+).
AZURE_FUNCTIONS_PIN = "azure-functions>=1.20,<2"
AUTH_LEVELS = {"function": "FUNCTION", "none": "ANONYMOUS"}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
PACKAGES_TOP = SITE_PACKAGES.parts[0]
DEPS_RECORD = "deps.json"
REUSED_NOTE = "nothing changed since the last build: the package and its zip are reused"
UPDATED_NOTE = (
    "dependencies unchanged: kept in the package; the zip is the cached deps.zip with the "
    "app and model appended"
)
REBUILT_NOTE = "package assembled from the cached dependencies and the cached deps.zip"


def azure_target(python_version: str) -> Target:
    """The uv target of a Function App on ``python_version`` (Linux x86_64)."""
    return Target("azure", python_version=python_version, platform=AZURE_PLATFORM)


def azure_requirements(model_requirements: Sequence[str]) -> list[str]:
    """The runtime's, azure-functions 1.x, and the model's own requirements."""
    return [*runtime_requirements(extra=("azure",)), AZURE_FUNCTIONS_PIN, *model_requirements]


def auth_level(auth: str) -> str:
    """``func.AuthLevel`` member for slml.yaml's ``azure.auth``."""
    try:
        return AUTH_LEVELS[auth]
    except KeyError:
        raise ValueError(f"azure.auth: {auth!r}; expected one of {sorted(AUTH_LEVELS)}") from None


def render_function_app(*, auth: str, model_name: str) -> str:
    """The text of ``function_app.py`` (the model lives in ``./model``)."""
    return render(
        "azure/function_app.py.j2",
        auth_level=auth_level(auth),
        model_dir=MODEL_DIR,
        model_name=model_name,
    )


def render_host_json(*, log_level: str = "Information") -> str:
    """The text of ``host.json``."""
    return render("azure/host.json.j2", log_level=log_level)


def write_app_files(dest: Path, *, auth: str, model_name: str) -> None:
    """Write ``function_app.py``, ``host.json`` and the runtime into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    text = render_function_app(auth=auth, model_name=model_name)
    (dest / "function_app.py").write_text(text, encoding="utf-8")
    (dest / "host.json").write_text(render_host_json(), encoding="utf-8")
    copy_runtime(dest)


@dataclass(frozen=True)
class Dependencies:
    """The cached dependencies of one (lock, Python version, platform): the installed,
    ELF-checked and slimmed ``site`` tree, its deterministic ``zip`` (entries under
    ``.python_packages/lib/site-packages/``) and its size, measured once."""

    key: str
    site: Path
    zip: Path
    size: SizeReport
    reused: bool


def cached_dependencies(
    lock: Lock, *, target: Target, cache_dir: Path, runner: Runner = subprocess.run
) -> Dependencies:
    """The dependencies of ``lock`` for ``target`` under ``<cache>/azure/<key>/``, built
    once per key (lock hash, Python version, platform) and reused after. Safe to call
    concurrently. Raises IncompatibleWheel / PackagingError."""
    key = layer_key(lock, target)
    home = Path(cache_dir) / "azure" / key
    home.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home) + ".lock", timeout=1800):
        reused = (home / DEPS_RECORD).is_file()
        if not reused:
            _stage_dependencies(lock, home, target=target, runner=runner)
    data = json.loads((home / DEPS_RECORD).read_text(encoding="utf-8"))
    size = SizeReport(
        unzipped=int(data["unzipped"]),
        zipped=(home / "deps.zip").stat().st_size,
        largest=tuple((str(n), int(b)) for n, b in data["largest"]),
    )
    return Dependencies(key, home / "site-packages", home / "deps.zip", size, reused)


def _stage_dependencies(lock: Lock, home: Path, *, target: Target, runner: Runner) -> None:
    """Install, check, slim, zip and measure in a temporary directory, then rename it
    to ``home``; ``deps.json`` is written last, so a half-built tree is never reused."""
    sweep(home.parent)  # what builds killed with SIGKILL left behind
    work = make_staging_dir(home)
    try:
        site = install_for_target(lock, work / "site-packages", target=target, runner=runner)
        check_binaries(site, machine=AZURE_MACHINE)
        slim(site)
        zip_dir(site, work / "deps.zip", prefix=SITE_PACKAGES.as_posix() + "/")
        size = measure(site)
        record = {"lock": lock.hash, "unzipped": size.unzipped, "largest": size.largest}
        (work / DEPS_RECORD).write_text(json.dumps(record), encoding="utf-8")
        shutil.rmtree(home, ignore_errors=True)
        work.rename(home)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_azure_package(
    *,
    artifact_dir: Path,
    out_dir: Path,
    python_version: str = "3.11",
    auth: str = "function",
    reporter: Reporter | None = None,
    cache_dir: Path | None = None,
    runner: Runner = subprocess.run,
    requirements_changes: Any = None,
) -> Bundle:
    """Build the Function App package for ``artifact_dir`` under ``out_dir`` (its
    requirements changed by slml.yaml's ``requirements:``, ``requirements_changes``).

    Incremental: dependencies come from the cache (``cached_dependencies``); when only
    the model or the app changed, the package keeps its dependency tree and the zip is
    the cached ``deps.zip`` with the app appended; when nothing changed (same inputs
    digest, outputs untouched) the previous package is reused as is.
    Blocking and local (no cloud call). Raises ArtifactError/IntegrityError for a bad
    artifact, IncompatibleWheel when a dependency ships a non-x86_64-Linux binary,
    PackagingError when resolving or installing fails.
    """
    reporter = reporter or NullReporter()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = azure_target(python_version)
    manifest = verified_manifest(artifact_dir)
    started = time.perf_counter()
    model_reqs, variant_notes = model_requirements(manifest, requirements_changes, cpu=True)
    requirements = azure_requirements(model_reqs)
    reporter.step(f"resolving {len(requirements)} requirements for {target.describe()}")
    lock = resolve_lock(requirements, target=target, cache_dir=cache, runner=runner)
    deps = cached_dependencies(lock, target=target, cache_dir=cache, runner=runner)
    reporter.detail(f"{len(lock.pins)} pins, lock {lock.hash[:12]}, dependencies {deps.site}")
    package, zip_path = Path(out_dir) / "package", Path(out_dir) / "package.zip"
    size, how = _package(
        package,
        zip_path,
        artifact_dir=Path(artifact_dir),
        deps=deps,
        auth=auth,
        manifest=manifest,
        requirements=lock.path.read_text(encoding="utf-8"),
    )
    reporter.detail(f"built in {time.perf_counter() - started:.2f} s; {_describe(size)}")
    return Bundle(
        provider="azure",
        path=package,
        lock_hash=lock.hash,
        model_sha256=artifact_digest(manifest),
        python_version=python_version,
        platform=AZURE_PLATFORM,
        size=size,
        files={
            "zip": zip_path,
            "lock": lock.path,
            "site_packages": deps.site,
            "deps_zip": deps.zip,
        },
        notes=(
            f"dependencies for Python {python_version} on Linux x86_64 ({AZURE_PLATFORM}, "
            "binary wheels only, ELF-checked)" + (", from cache" if deps.reused else ""),
            how,
            f"auth level {auth_level(auth)}",
            *variant_notes,
        ),
        reused=deps.reused,
    )


def _package(
    package: Path,
    zip_path: Path,
    *,
    artifact_dir: Path,
    deps: Dependencies,
    auth: str,
    manifest: dict[str, Any],
    requirements: str,
) -> tuple[SizeReport, str]:
    """Reuse, update or rebuild ``package`` and its zip. Returns (size, what was done)."""
    model_name = manifest["name"]
    inputs = digest(
        deps.key,
        artifact_inputs(artifact_dir),
        render_function_app(auth=auth, model_name=model_name),
        render_host_json(),
        runtime_digest(),
        requirements,
    )
    record_file = record_path(package)
    prior = load_record(record_file)
    if prior is not None and prior.current(inputs):
        size = _size_from(prior.data.get("size"))
        if size is not None:
            return size, REUSED_NOTE
    keep = prior is not None and prior.data.get("deps_key") == deps.key
    keep = keep and (package / SITE_PACKAGES).is_dir()
    forget(record_file)
    _assemble(
        package,
        artifact_dir=artifact_dir,
        site=None if keep else deps.site,
        auth=auth,
        model_name=model_name,
        manifest=manifest,
    )
    (package / "requirements.txt").write_text(requirements, encoding="utf-8")
    zip_onto(deps.zip, package, zip_path, exclude={PACKAGES_TOP})
    size = _size_report(package, zip_path, deps)
    save_record(
        record_file,
        inputs=inputs,
        outputs=[zip_path, package],
        data={"deps_key": deps.key, "size": asdict(size)},
    )
    return size, (UPDATED_NOTE if keep else REBUILT_NOTE)


def _assemble(
    package: Path, *, artifact_dir: Path, site: Path | None, auth: str, model_name: str,
    manifest: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Write the app and the model into ``package``; copy ``site`` in as its
    dependencies, or, when ``site`` is None, keep the dependencies already there."""
    if site is None:
        for entry in package.iterdir():
            if entry.name != PACKAGES_TOP:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    else:
        shutil.rmtree(package, ignore_errors=True)
        shutil.copytree(site, package / SITE_PACKAGES, ignore=_IGNORE)
    write_app_files(package, auth=auth, model_name=model_name)
    copy_artifact(artifact_dir, package / MODEL_DIR, manifest=manifest)


def _app_bytes(package: Path) -> int:
    """Bytes of everything in ``package`` but its dependencies."""
    total = 0
    for entry in package.iterdir():
        if entry.name != PACKAGES_TOP:
            paths = files_under(entry) if entry.is_dir() else [entry]
            total += sum(p.stat().st_size for p in paths)
    return total


def _size_report(package: Path, zip_path: Path, deps: Dependencies) -> SizeReport:
    """The package's size; the dependencies' share (and the largest) from the cache."""
    app = _app_bytes(package)
    return SizeReport(
        unzipped=deps.size.unzipped + app,
        zipped=zip_path.stat().st_size,
        largest=deps.size.largest,
        parts={"dependencies": deps.size.unzipped, "app": app},
    )


def _size_from(data: object) -> SizeReport | None:
    """The size report a record holds; None when it holds none or a malformed one."""
    try:
        return SizeReport(
            unzipped=int(data["unzipped"]),  # type: ignore[index]
            zipped=int(data["zipped"]),  # type: ignore[index]
            largest=tuple((str(n), int(b)) for n, b in data["largest"]),  # type: ignore[index]
            parts={str(k): int(v) for k, v in data["parts"].items()},  # type: ignore[index]
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _describe(size: SizeReport) -> str:
    top = ", ".join(f"{name} {megabytes(n)}" for name, n in size.largest[:5])
    return f"{megabytes(size.zipped or 0)} zipped, {megabytes(size.unzipped)} unzipped; {top}"
