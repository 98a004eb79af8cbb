"""The container image shared by Cloud Run and SageMaker: built from slml's build context
with BuildKit through pulumi-docker-build and pushed to the cloud's registry, or a
prebuilt image URI used as is.

``ImageSource`` is the plain-data choice; ``container_image`` turns it into an
``Output[str]`` image reference pinned by digest (``repo@sha256:...``) so a rebuilt image
always rolls out, even when its tag is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pulumi loads only when a program runs: the CLI starts faster
    import pulumi

PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class ImageSource:
    """Either ``context`` (a build context directory) with ``tag``, or ``image_uri``."""

    context: Path | None = None
    tag: str = "latest"
    image_uri: str | None = None

    def __post_init__(self) -> None:
        if (self.context is None) == (self.image_uri is None):
            raise ValueError("ImageSource needs exactly one of context and image_uri")

    @property
    def prebuilt(self) -> bool:
        return self.image_uri is not None


def image_tag(lock_hash: str, model_sha256: str) -> str:
    """A content tag: the lock's and the model's hashes, so equal inputs share a tag."""
    return f"d{lock_hash[:10]}-m{model_sha256[:10]}"


def registry_host(repository_url: str) -> str:
    """``123.dkr.ecr.us-east-1.amazonaws.com/repo`` → ``123.dkr.ecr.us-east-1.amazonaws.com``."""
    return repository_url.split("/", 1)[0]


def pinned_ref(repository_url: str, digest: str) -> str:
    """``repo@sha256:...``: the reference both clouds accept and never re-resolve."""
    return f"{repository_url}@{digest}"


def container_image(
    name: str,
    *,
    source: ImageSource,
    repository_url: pulumi.Input[str],
    username: pulumi.Input[str],
    password: pulumi.Input[str],
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """The image reference for ``source``: the prebuilt URI, or a ``docker_build.Image``
    built for linux/amd64 and pushed to ``repository_url`` with the given registry
    credentials (kept secret). Needs a Docker/BuildKit daemon at deploy time; not at
    preview (``build_on_preview=False``)."""
    import pulumi

    if source.image_uri is not None:
        return pulumi.Output.from_input(source.image_uri)
    import pulumi_docker_build as docker_build

    url = pulumi.Output.from_input(repository_url)
    image = docker_build.Image(
        name,
        context=docker_build.BuildContextArgs(location=str(source.context)),
        dockerfile=docker_build.DockerfileArgs(location=str(Path(source.context) / "Dockerfile")),
        platforms=[docker_build.Platform.LINUX_AMD64],
        push=True,
        build_on_preview=False,
        tags=[url.apply(lambda u: f"{u}:{source.tag}")],
        registries=[
            docker_build.RegistryArgs(
                address=url.apply(registry_host),
                username=username,
                password=pulumi.Output.secret(password),
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.all(url, image.digest).apply(lambda args: pinned_ref(args[0], args[1]))
