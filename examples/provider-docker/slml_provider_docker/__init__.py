"""``docker``: an slml provider from outside slml, through the ``slml.providers`` entry
point group. It runs the very container image slml builds for Cloud Run on the local
Docker engine, bound to 127.0.0.1 with ``PORT`` set as Cloud Run sets it, so the exact
cloud image can be tried before a cloud deploy."""

from slml_provider_docker.config import DockerConfig
from slml_provider_docker.provider import DockerProvider

__all__ = ["DockerConfig", "DockerProvider"]
