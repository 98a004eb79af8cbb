"""Shared by the container targets (gcp, sagemaker): building the context into
``.slml/builds/<provider>/``, choosing the image source, and the check that a
Docker/BuildKit builder is there before a deploy that must build.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slml.bundle.uvtool import stderr_tail
from slml.capture import requirements_with_sink
from slml.errors import ProviderUnavailable
from slml.infra.image import ImageSource, image_tag
from slml.providers.base import Bundle, ProviderContext

DockerCheck = Callable[[], str | None]


def docker_problem(
    *,
    runner: Callable[..., subprocess.CompletedProcess[Any]] = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """Why no image can be built here, in words; None when ``docker info`` answers."""
    if which("docker") is None:
        return "the docker CLI is not installed"
    try:
        done = runner(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` did not answer ({exc})"
    if done.returncode != 0:
        return f"no Docker daemon answers (`docker info`: {stderr_tail(done.stderr, 2)})"
    return None


def require_builder(provider: str, source: ImageSource, check: DockerCheck) -> None:
    """Raise ProviderUnavailable when the image must be built and no builder is here.
    A prebuilt ``image_uri`` needs none."""
    if source.prebuilt:
        return
    problem = check()
    if problem is None:
        return
    raise ProviderUnavailable(
        f"deploying with --provider {provider} builds a container image, but {problem}",
        hint=(
            "install and start Docker (with BuildKit/buildx) and retry; or build and push "
            f"the image yourself from .slml/builds/{provider}/context (linux/amd64) and set "
            f"{provider}.image_uri in slml.yaml. `slml preview` works without a builder"
        ),
    )


def build(
    ctx: ProviderContext, provider: str, *, python_version: str, tarball: bool, gpu: bool = False
) -> Bundle:
    """Write the build context (and model.tar.gz when ``tarball``) for ``provider``;
    ``gpu`` keeps CUDA-capable dependencies (no CPU-only variants)."""
    from slml.bundle import cache_dir
    from slml.bundle.container import build_container_context

    out = ctx.state.build_dir(provider)
    ctx.reporter.step(f"building the container context for {provider} (Python {python_version})")
    # the bundle's notes are printed once, with the build or deploy result
    return build_container_context(
        Path(ctx.config.model),
        out / "context",
        provider=provider,
        python_version=python_version,
        cache_dir=cache_dir(),
        model_tar=out / "model.tar.gz" if tarball else None,
        requirements_changes=requirements_with_sink(ctx.config),
        gpu=gpu,
    )


def image_source(section: Any, bundle: Bundle) -> ImageSource:
    """The configured prebuilt ``image_uri``, else the bundle's context with a content tag."""
    if section.image_uri:
        return ImageSource(image_uri=section.image_uri)
    return ImageSource(context=bundle.path, tag=image_tag(bundle.lock_hash, bundle.model_sha256))
