"""The ``docker:`` section of slml.yaml, validated by slml through this model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class DockerConfig(BaseModel):
    """Where and how the container runs. Unknown keys are errors, as in slml's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Annotated[int, Field(ge=1024, le=65535)] = Field(
        default=8080, description="the port on 127.0.0.1 (the container's $PORT)"
    )
    python_version: Literal["3.11", "3.12", "3.13"] = "3.12"
    cli: str = Field(default="docker", max_length=256, description="the docker CLI to call")
    health_timeout: Annotated[float, Field(gt=0, le=600)] = 60
    env: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=100
    )
    build_args: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=50,
        description="`docker build --build-arg`s, e.g. HTTPS_PROXY for pip behind a proxy",
    )
