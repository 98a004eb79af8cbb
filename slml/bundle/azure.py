"""The Azure Functions package: the Python v2 programming model, ready to zip-deploy.

Layout of ``<out_dir>/package`` (zipped to ``<out_dir>/package.zip``)::

    function_app.py                     AsgiFunctionApp around the slml runtime app
    host.json                           version 2.0, extension bundle, routePrefix ""
    slml/runtime/...                    the serving runtime (copy_runtime)
    model/...                           a verified copy of the model artifact
    .python_packages/lib/site-packages  dependencies, binary wheels for Linux x86_64

Target platform: ``x86_64-manylinux_2_28``. Azure Functions' Linux Python images are
Debian-based (Debian 11 "bullseye", glibc 2.31, and Debian 12 "bookworm", glibc 2.36,
per the azure-functions-docker image tables), so glibc 2.28 wheels load on every one of
them while newer manylinux tags might not. The Python version is the app's
(``azure.python_version``); azure-functions stays on 1.x, the line for Python ≤ 3.12.

Dependencies are installed once per lock hash into the cache
(``<cache>/azure/<lock hash>/site-packages``), ELF-checked and slimmed there, then
copied into each package: changing only the model rebuilds no dependency.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

from slml.bundle import cache_dir as default_cache_dir
from slml.bundle.elf import check_binaries
from slml.bundle.install import install_for_target
from slml.bundle.local import verified_manifest
from slml.bundle.lock import Lock, Target, resolve_lock, runtime_requirements
from slml.bundle.runtime_files import copy_runtime
from slml.bundle.uvtool import Runner
from slml.providers.base import Bundle, NullReporter, Reporter, SizeReport
from slml.runtime.manifest import artifact_digest
from slml.templates import render

AZURE_MACHINE = "x86_64"
AZURE_PLATFORM = "x86_64-manylinux_2_28"
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"
MODEL_DIR = "model"
#: azure-functions 1.x is the line for Python 3.10-3.12 (2.x is for 3.13+).
AZURE_FUNCTIONS_PIN = "azure-functions>=1.20,<2"
AUTH_LEVELS = {"function": "FUNCTION", "none": "ANONYMOUS"}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


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


def cached_site_packages(
    lock: Lock, *, target: Target, cache_dir: Path, runner: Runner = subprocess.run
) -> tuple[Path, bool]:
    """The installed, checked and slimmed dependencies of ``lock`` for ``target``, and
    whether they came from the cache. Raises IncompatibleWheel / PackagingError."""
    from slml.bundle.slim import slim

    root = Path(cache_dir) / "azure" / f"{lock.hash}-{target.python_version}"
    done = root / "site-packages" / ".slml-complete"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=1800):
        if done.is_file():
            return done.parent, True
        staging = root / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        install_for_target(lock, staging, target=target, runner=runner)
        check_binaries(staging, machine=AZURE_MACHINE)
        slim(staging)
        shutil.rmtree(done.parent, ignore_errors=True)
        staging.rename(done.parent)
        done.write_text(lock.hash + "\n", encoding="utf-8")
    return done.parent, False


def build_azure_package(
    *,
    artifact_dir: Path,
    out_dir: Path,
    python_version: str = "3.11",
    auth: str = "function",
    reporter: Reporter | None = None,
    cache_dir: Path | None = None,
    runner: Runner = subprocess.run,
) -> Bundle:
    """Build the Function App package for ``artifact_dir`` under ``out_dir``.

    Blocking and local (no cloud call). Raises ArtifactError/IntegrityError for a bad
    artifact, IncompatibleWheel when a dependency ships a non-x86_64-Linux binary,
    PackagingError when resolving or installing fails.
    """
    reporter = reporter or NullReporter()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = azure_target(python_version)
    manifest = verified_manifest(artifact_dir)
    started = time.perf_counter()
    requirements = azure_requirements(manifest.get("requirements") or [])
    reporter.step(f"resolving {len(requirements)} requirements for {target.describe()}")
    lock = resolve_lock(requirements, target=target, cache_dir=cache, runner=runner)
    site, reused = cached_site_packages(lock, target=target, cache_dir=cache, runner=runner)
    reporter.detail(f"{len(lock.pins)} pins, lock {lock.hash[:12]}, dependencies {site}")
    package, zip_path = Path(out_dir) / "package", Path(out_dir) / "package.zip"
    _assemble(package, artifact_dir=Path(artifact_dir), site=site, auth=auth,
              model_name=manifest["name"])  # fmt: skip
    size = _zip_and_measure(package, zip_path)
    elapsed = time.perf_counter() - started
    reporter.detail(f"built in {elapsed:.2f} s; {_describe(size)}")
    return Bundle(
        provider="azure",
        path=package,
        lock_hash=lock.hash,
        model_sha256=artifact_digest(manifest["files"]),
        python_version=python_version,
        platform=AZURE_PLATFORM,
        size=size,
        files={"zip": zip_path, "lock": lock.path, "site_packages": site},
        notes=(
            f"dependencies for Python {python_version} on Linux x86_64 ({AZURE_PLATFORM}, "
            "binary wheels only, ELF-checked)" + (", from cache" if reused else ""),
            f"auth level {auth_level(auth)}",
        ),
        reused=reused,
    )


def _assemble(package: Path, *, artifact_dir: Path, site: Path, auth: str, model_name: str) -> None:
    shutil.rmtree(package, ignore_errors=True)
    write_app_files(package, auth=auth, model_name=model_name)
    shutil.copytree(artifact_dir, package / MODEL_DIR, ignore=_IGNORE)
    shutil.copytree(site, package / SITE_PACKAGES, ignore=shutil.ignore_patterns(".slml-*"))


def _zip_and_measure(package: Path, zip_path: Path) -> SizeReport:
    """The deterministic zip and the size report (largest: the dependencies)."""
    from slml.bundle.size import measure, zip_dir

    zip_dir(package, zip_path)
    deps = measure(package / SITE_PACKAGES)
    total = measure(package)
    return SizeReport(
        unzipped=total.unzipped,
        zipped=zip_path.stat().st_size,
        largest=deps.largest,
        parts={"dependencies": deps.unzipped, "app": total.unzipped - deps.unzipped},
    )


def _describe(size: SizeReport) -> str:
    mb = 1024 * 1024
    top = ", ".join(f"{name} {n / mb:.1f} MB" for name, n in size.largest[:5])
    return f"{(size.zipped or 0) / mb:.1f} MB zipped, {size.unzipped / mb:.1f} MB unzipped; {top}"
