"""A container build context for Cloud Run and SageMaker, from one model artifact.

``build_container_context(artifact_dir, dest, provider=...)`` writes::

    dest/
      Dockerfile          slml/templates/container/Dockerfile.j2
      .dockerignore       only what the Dockerfile copies reaches the builder
      requirements.lock   exact pins for linux x86_64 (manylinux_2_36) and the Python version
      app/slml/...        the serving runtime (copy_runtime), nothing of the build side
      model/              the artifact: slml-model.json + model/...

The same context serves both targets (see the Dockerfile's header). ``model_tarball``
writes the artifact as a deterministic ``model.tar.gz`` for SageMaker's ModelDataUrl.
Build is local: the only network use is uv resolving (and, for the size report,
downloading) wheels, both cached. Incremental: the context and the tarball are rewritten
only when their inputs changed (``slml.bundle.incremental``); the dependency layer's size
is measured once per lock.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import slml
from slml.artifact.store import copy_artifact, verified_manifest
from slml.bundle import cache_dir as default_cache_dir
from slml.bundle import incremental, sources
from slml.bundle.container_layer import (
    LOCK_PLATFORM,
    LayerSteps,
    measure_dependencies,
    script_texts,
    tree_size,
)
from slml.bundle.lambda_native import DONORS
from slml.bundle.lock import Lock, Target, requirement_name, resolve_lock, runtime_requirements
from slml.bundle.runtime_files import copy_runtime
from slml.bundle.size import files_under
from slml.bundle.uvtool import Runner
from slml.bundle.variants import keeps_sources, keeps_symbols, model_requirements
from slml.errors import ConfigError
from slml.pipeline import Bundle, SizeReport
from slml.runtime.manifest import MANIFEST_FILE, artifact_digest
from slml.templates import render
from slml.units import human, megabytes

# Docker official images, pinned to a patch release (tags checked to exist on Docker
# Hub: python:3.11.15-slim-bookworm, 3.12.13-, 3.13.12-). 3.11 and 3.12 only get
# security releases, so these move rarely; bump them together with the goldens.
PYTHON_PATCH = {"3.11": "3.11.15", "3.12": "3.12.13", "3.13": "3.13.12"}
IMAGE_PLATFORM = "linux/amd64"
UID = 10001
# Uncompressed size of python:3.1x-slim-bookworm for linux/amd64 as `docker images`
# reports it: published figures are ~113 MB (3.8.5-slim) to ~120-150 MB (3.10/3.11-slim).
# A documented figure, not measured here (no Docker engine on the build host).
BASE_IMAGE_BYTES = 125_000_000
MODEL_DIR_IN_IMAGE = "/app/model"
SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def base_image(python_version: str) -> str:
    """``python:<patch>-slim-bookworm`` for a supported ``major.minor``."""
    try:
        return f"python:{PYTHON_PATCH[python_version]}-slim-bookworm"
    except KeyError:
        allowed = ", ".join(PYTHON_PATCH)
        raise ConfigError(
            f"python_version {python_version!r} has no pinned container base image; "
            f"expected one of {allowed}"
        ) from None


def _read_artifact(artifact_dir: Path) -> tuple[dict[str, Any], str]:
    manifest = verified_manifest(artifact_dir)
    return manifest, artifact_digest(manifest)


def _normalise_modes(root: Path) -> None:
    """Files 0644, directories 0755: readable by the image's unprivileged user."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o644)


def context_texts(
    *, manifest: dict[str, Any], digest: str, provider: str, python_version: str,
    wheels: bool = False, steps: LayerSteps = LayerSteps(),
) -> dict[str, str]:
    """The generated files of the context (``Dockerfile``, ``.dockerignore``, the scripts
    the dependency layer runs: container_layer.py) by name; ``wheels``: the context has a
    ``wheels/`` directory for pip's find-links; ``steps``: what the dependency layer's scripts
    do after pip (container_layer.LayerSteps)."""
    values = {
        "wheels": wheels,
        "model_name": manifest.get("name", "model"),
        "model_version": manifest.get("version", ""),
        "model_sha256": digest,
        "slml_version": slml.__version__,
        "provider": provider,
        "python_version": python_version,
        "python_patch": PYTHON_PATCH[python_version],
        "uid": UID,
        "donors": " ".join(f"--donor {lib}={req}" for lib, req in sorted(DONORS.items())),
        "bytecode": steps.arguments(),
        "strip": not steps.keep_symbols,
    }
    return {
        "Dockerfile": render("container/Dockerfile.j2", **values),
        ".dockerignore": render("container/dockerignore.j2", **values),
        **script_texts(),
    }


def write_context(
    artifact_dir: Path,
    dest: Path,
    *,
    lock: Lock,
    manifest: dict[str, Any],
    digest: str,
    provider: str,
    python_version: str,
    steps: LayerSteps = LayerSteps(),
) -> Path:
    """(Re)write the build context at ``dest`` from a resolved lock (``steps``: what
    the dependency layer's scripts do after pip). Returns ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    lines, wheels = context_sources(lock)
    text = lock.path.read_text("utf-8")
    (dest / "requirements.lock").write_text("".join(f"{x}\n" for x in lines) + text, "utf-8")
    copy_runtime(dest / "app")
    copy_artifact(artifact_dir, dest / "model", manifest=manifest)
    _normalise_modes(dest)
    for wheel in wheels:  # after the chmod: a link shares its mode with the original
        (dest / "wheels").mkdir(exist_ok=True)
        try:  # a hard link when on the same file system: torch's wheel alone is ~190 MB
            os.link(wheel, dest / "wheels" / wheel.name)
        except OSError:
            shutil.copyfile(wheel, dest / "wheels" / wheel.name)
    texts = context_texts(
        manifest=manifest, digest=digest, provider=provider, python_version=python_version,
        wheels=bool(wheels), steps=steps,
    )  # fmt: skip
    for name, text in texts.items():
        (dest / name).write_text(text, "utf-8")
    return dest


def context_sources(lock: Lock) -> tuple[list[str], list[Path]]:
    """The package-source lines the context's requirements.lock starts with (slml.yaml's
    ``packages:``, ``${VAR}`` left for pip to expand in the build) and the local
    find-links wheels the lock pins, which the context carries in ``wheels/``."""
    names = [requirement_name(pin) for pin in lock.pins]
    wheels = sources.wheels_for(lock.pins, names)
    in_context = "/app/wheels" if wheels else None
    return sources.requirement_lines(names, links_in_context=in_context), wheels


def model_tarball(artifact_dir: Path, dest: Path) -> Path:
    """Write the artifact as ``model.tar.gz`` with the manifest at the archive's root
    (SageMaker unpacks it into /opt/ml/model). Deterministic: sorted entries, zero
    mtimes, owner root, modes 0644/0755, so equal artifacts give equal bytes."""
    artifact_dir = Path(artifact_dir)
    listed = {MANIFEST_FILE, *verified_manifest(artifact_dir)["files"]}  # only these
    parents = {str(d) for rel in listed for d in PurePosixPath(rel).parents if str(d) != "."}
    paths = sorted(artifact_dir / rel for rel in listed | parents)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(dest, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in paths:
            _add_normalised(tar, path, path.relative_to(artifact_dir).as_posix())
    return dest


def _add_normalised(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tar.gettarinfo(str(path), arcname=arcname)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.mode = 0o755 if info.isdir() else 0o644
    if info.isfile():
        with open(path, "rb") as fh:
            tar.addfile(info, fh)
    else:
        tar.addfile(info)


def build_container_context(
    artifact_dir: Path,
    dest: Path,
    *,
    provider: str,
    python_version: str = "3.11",
    cache_dir: Path | None = None,
    model_tar: Path | None = None,
    measure: bool = True,
    bytecode: bool = True,
    runner: Runner = subprocess.run,
    requirements_changes: Any = None,
    gpu: bool = False,
) -> Bundle:
    """Resolve the artifact's requirements (changed by slml.yaml's ``requirements:``,
    ``requirements_changes``) plus the runtime's for linux x86_64 and
    ``python_version``, write the build context at ``dest`` (replacing it), and
    optionally ``model_tar`` (SageMaker). ``bytecode`` counts the .pyc files pip writes
    in the image, as the layer's bytecode walk leaves them (slower to measure, cached per
    lock). The dependency layer ships the modules importing the model's and the runtime's
    frameworks reads as bytecode only, unless ``requirements_changes`` (slml.yaml's
    ``requirements:``) says ``source_code: keep``, and its shared libraries stripped
    unless it says ``symbols: keep``. Raises ArtifactError/IntegrityError for a bad
    artifact, ConfigError for an unsupported Python, PackagingError when resolving fails.
    The size report adds the documented base image size to the measured layers."""
    base_image(python_version)
    artifact_dir, dest = Path(artifact_dir), Path(dest)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    manifest, digest = _read_artifact(artifact_dir)
    # a GPU target (``gpu``: Cloud Run with gcp.gpu) keeps the CUDA-capable packages
    model_reqs, variant_notes = model_requirements(manifest, requirements_changes, cpu=not gpu)
    requirements = [*model_reqs, *runtime_requirements()]
    target = Target(provider, python_version=python_version, platform=LOCK_PLATFORM, gpu=gpu)
    lock = resolve_lock(requirements, target=target, cache_dir=cache, runner=runner)
    steps = LayerSteps.of(model_reqs, keep_sources=keeps_sources(requirements_changes),
                       keep_symbols=keeps_symbols(requirements_changes))  # fmt: skip
    context_reused = _write_context_if_changed(
        artifact_dir, dest, lock=lock, manifest=manifest, digest=digest, provider=provider,
        python_version=python_version, steps=steps,
    )  # fmt: skip
    files = {"context": dest, "dockerfile": dest / "Dockerfile", "lock": dest / "requirements.lock"}
    reused_parts = ["context"] if context_reused else []
    if model_tar is not None:
        files["model_tar"] = Path(model_tar)
        if incremental.reuse_or_build(
            Path(model_tar),
            incremental.artifact_inputs(artifact_dir),
            lambda: [model_tarball(dest / "model", Path(model_tar))],  # the verified copy
        ):
            reused_parts.append("model.tar.gz")
    size = _size_report(dest, lock, python_version, cache, runner, measure=measure, pyc=bytecode,
                        steps=steps)  # fmt: skip
    notes: tuple[str, ...] = (
        f"container context for {IMAGE_PLATFORM}: {base_image(python_version)}, "
        f"{len(lock.pins)} pinned packages, non-root uid {UID}, model in the last layer",
        f"expected image size ~{human(size.unzipped)} uncompressed "
        f"({_parts_words(size.parts)})",
    )
    notes += variant_notes
    if reused_parts:
        notes += (f"unchanged since the last build, reused: {', '.join(reused_parts)}",)
    return Bundle(
        provider=provider,
        path=dest,
        lock_hash=lock.hash,
        model_sha256=digest,
        python_version=python_version,
        platform=IMAGE_PLATFORM,
        size=size,
        files=files,
        notes=notes,
        reused=lock.reused,
    )


def _write_context_if_changed(
    artifact_dir: Path, dest: Path, *, lock: Lock, manifest: dict[str, Any], digest: str,
    provider: str, python_version: str, steps: LayerSteps,
) -> bool:  # fmt: skip
    """``write_context`` unless the context at ``dest`` was built from the same inputs
    (lock, artifact, runtime, generated files) and is untouched. True when reused."""
    lines, wheels = context_sources(lock)
    texts = context_texts(
        manifest=manifest, digest=digest, provider=provider, python_version=python_version,
        wheels=bool(wheels), steps=steps,
    )  # fmt: skip
    inputs = incremental.digest(
        incremental.file_digest(lock.path),
        *lines, *(str(w) for w in wheels),
        incremental.artifact_inputs(artifact_dir),
        incremental.runtime_digest(),
        *(part for item in sorted(texts.items()) for part in item),
    )

    def build() -> list[Path]:
        write_context(
            artifact_dir, dest, lock=lock, manifest=manifest, digest=digest, provider=provider,
            python_version=python_version, steps=steps,
        )  # fmt: skip
        return [dest, *files_under(dest)]

    return incremental.reuse_or_build(dest, inputs, build)


def _parts_words(parts: dict[str, int]) -> str:
    return ", ".join(f"{name} {megabytes(value)}" for name, value in parts.items())


def _size_report(
    dest: Path,
    lock: Lock,
    python_version: str,
    cache: Path,
    runner: Runner,
    *,
    measure: bool,
    pyc: bool,
    steps: LayerSteps,
) -> SizeReport:
    deps: int = 0
    largest: tuple[tuple[str, int], ...] = ()
    if measure:
        deps, largest = measure_dependencies(
            lock, python_version=python_version, cache_dir=cache, bytecode=pyc, steps=steps,
            runner=runner,
        )  # fmt: skip
    parts = {
        "base": BASE_IMAGE_BYTES,
        "dependencies": deps,
        "runtime": tree_size(dest / "app"),
        "model": tree_size(dest / "model"),
    }
    return SizeReport(unzipped=sum(parts.values()), largest=largest, parts=parts)


__all__ = [
    "IMAGE_PLATFORM",
    "LOCK_PLATFORM",
    "MANIFEST_FILE",
    "MODEL_DIR_IN_IMAGE",
    "PYTHON_PATCH",
    "SAGEMAKER_MODEL_DIR",
    "UID",
    "base_image",
    "build_container_context",
    "context_texts",
    "measure_dependencies",
    "model_tarball",
    "tree_size",
    "write_context",
]
