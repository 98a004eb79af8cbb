"""The Lambda container image context (``aws.large_bundle: image``).

``write_image_context(out_dir, python=, function=, target=, name=)`` writes
``out_dir/image/``: ``python/`` (the installed dependencies), ``function/`` (runtime,
model, ``slml_handler.py``) and a Dockerfile on AWS's ``public.ecr.aws/lambda/python``
base image for the runtime's Python, which copies both into ``${LAMBDA_TASK_ROOT}``,
the native libraries the layer would carry in ``lib/`` into ``/opt/lib`` (on the base
image's ``LD_LIBRARY_PATH``), and names the handler as its CMD: the base image's
entrypoint runs the Runtime Interface Client on it (tests/containers runs it under
awslambdaric).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import slml
from slml.bundle.lock import Target
from slml.templates import render_to

BASE_IMAGE = "public.ecr.aws/lambda/python"


def base_image(python_version: str) -> str:
    """The AWS base image a Lambda container image for ``python_version`` starts from."""
    return f"{BASE_IMAGE}:{python_version}"


def write_image_context(
    out_dir: Path, *, python: Path, function: Path, target: Target, name: str
) -> Path:
    """Write (replacing) ``out_dir/image`` and return it."""
    image = Path(out_dir) / "image"
    if image.exists():
        shutil.rmtree(image)
    shutil.copytree(python, image / "python", symlinks=True)
    shutil.copytree(function, image / "function")
    libs = Path(python).parent / "lib"  # the layer's lib/ (lambda_native.py), if any
    if libs.is_dir():
        shutil.copytree(libs, image / "lib")
    render_to(
        "aws/Dockerfile.j2", image / "Dockerfile", name=name, base_image=base_image(
            target.python_version), platform=target.platform or "this host",
        slml_version=slml.__version__, native_libs=libs.is_dir(),
    )  # fmt: skip
    return image
