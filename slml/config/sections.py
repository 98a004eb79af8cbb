"""One pydantic model per provider section of slml.yaml.

Every model forbids unknown keys, and every bound is the cloud's own documented limit
(see ../shared/CLOUD-REFERENCE.md), so a mistake is caught before any build or call.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from slml.config.regions import check_aws_region, check_azure_location, check_gcp_region

Port = Annotated[int, Field(ge=1024, le=65535)]
# Every string is bounded: a config value is a name, a URL or a short setting.
EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
EnvVars = Annotated[
    dict[EnvName, Annotated[str, Field(max_length=4096)]],
    Field(max_length=100, description="environment variables (Lambda allows 4 KB in all)"),
]
TagKey = Annotated[str, Field(min_length=1, max_length=128)]
Tags = Annotated[
    dict[TagKey, Annotated[str, Field(max_length=256)]],
    Field(max_length=50, description="AWS allows 50 tags, keys of 128 and values of 256"),
]
Uri = Annotated[str, Field(min_length=1, max_length=1024)]
AwsRegion = Annotated[str, Field(max_length=32), AfterValidator(check_aws_region)]
GcpRegion = Annotated[str, Field(max_length=32), AfterValidator(check_gcp_region)]
AzureLocation = Annotated[str, Field(max_length=32), AfterValidator(check_azure_location)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalConfig(Section):
    """`local:` the embedded provider: the bundle runs as a server on this machine."""

    host: Literal["127.0.0.1", "localhost", "0.0.0.0"] = "127.0.0.1"
    port: Port | None = Field(
        default=None, description="fixed port; by default a free one, kept across redeploys"
    )
    health_timeout: float = Field(default=60.0, gt=0, le=600, description="seconds")
    max_body_mb: float = Field(default=6.0, gt=0, le=1024)
    env: EnvVars = Field(default_factory=dict)


LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip


class ThrottleConfig(Section):
    """`aws.throttle:` the API Gateway stage's limits; requests over them get 429 at the
    gateway, before any function runs or is billed."""

    burst: int = Field(default=100, ge=0, le=5000, description="requests at once")
    rate: float = Field(default=50.0, ge=0, le=10000, description="requests per second")


class AwsConfig(Section):
    """`aws:` AWS Lambda behind an API Gateway HTTP API."""

    region: AwsRegion = "us-east-1"
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    memory: int = Field(default=1024, ge=128, le=10240, description="MB")
    timeout: int = Field(default=30, ge=1, le=900, description="seconds")
    ephemeral_storage: int = Field(default=512, ge=512, le=10240, description="MB of /tmp")
    reserved_concurrency: int | None = Field(
        default=None, ge=0, le=10000, description="at most this many instances at once"
    )
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=10000)
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
    auth: Literal["iam", "api_key", "none"] = "iam"
    log_retention_days: int = 14
    artifact_bucket: str | None = Field(
        default=None,
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
        description="S3 bucket for zips over 50 MB; created when omitted",
    )
    large_bundle: Literal["fail", "image"] = Field(
        default="fail", description="over 250 MB unzipped: fail, or switch to a container image"
    )
    bytecode: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="ship .pyc compiled for the runtime's Python (unchecked-hash), so cold "
        "starts skip compiling: auto when an interpreter of that exact version is on this "
        "machine and the bundle stays under 250 MB; always fails without one; never ships none",
    )
    tags: Tags = Field(default_factory=dict)
    env: EnvVars = Field(default_factory=dict)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"{value} is not a CloudWatch retention period; use one of {allowed}")
        return value


class DataCaptureConfig(Section):
    enabled: bool = False
    s3_uri: Uri | None = Field(default=None, pattern=r"^s3://")
    sampling_percentage: int = Field(default=100, ge=0, le=100)


class SageMakerConfig(Section):
    """`sagemaker:` a SageMaker endpoint, serverless unless `instance_type` is given."""

    region: AwsRegion = "us-east-1"
    memory: int = Field(default=2048, ge=1024, le=6144, description="MB, serverless only")
    max_concurrency: int = Field(default=5, ge=1, le=200, description="serverless only")
    instance_type: str | None = Field(
        default=None, max_length=64, pattern=r"^ml\.[a-z0-9.]+$", description="e.g. ml.m5.large"
    )
    instance_count: int = Field(default=1, ge=1)
    data_capture: DataCaptureConfig = Field(default_factory=DataCaptureConfig)
    image_uri: Uri | None = Field(default=None, description="prebuilt image; skips the build")
    python_version: Literal["3.11", "3.12", "3.13"] = "3.11"
    tags: Tags = Field(default_factory=dict)
    env: EnvVars = Field(default_factory=dict)

    @field_validator("memory")
    @classmethod
    def _memory_step(cls, value: int) -> int:
        if value % 1024:
            raise ValueError(f"{value} is not a multiple of 1024 (1024, 2048, ... 6144)")
        return value

    @model_validator(mode="after")
    def _capture_needs_instances(self) -> SageMakerConfig:
        if self.data_capture.enabled and self.instance_type is None:
            raise ValueError(
                "data_capture needs an instance-backed endpoint (set instance_type); "
                "serverless endpoints do not support it"
            )
        return self


class GcpConfig(Section):
    """`gcp:` a Google Cloud Run service."""

    project: str | None = Field(
        default=None,
        min_length=6,
        max_length=30,
        pattern=r"^[a-z][a-z0-9-]+[a-z0-9]$",
        description="GCP project id",
    )
    region: GcpRegion = "us-central1"
    cpu: Literal["1", "2", "4", "6", "8"] = "1"
    memory: str = Field(default="1Gi", max_length=10, pattern=r"^[0-9]+(Mi|Gi)$")
    min_instances: int = Field(default=0, ge=0, le=1000)
    max_instances: int = Field(default=10, ge=1, le=1000)
    concurrency: int = Field(default=80, ge=1, le=1000)
    timeout: int = Field(default=300, ge=1, le=3600, description="seconds")
    auth: Literal["iam", "none"] = "iam"
    image_uri: Uri | None = Field(default=None, description="prebuilt image; skips the build")
    python_version: Literal["3.11", "3.12", "3.13"] = "3.11"
    env: EnvVars = Field(default_factory=dict)

    @model_validator(mode="after")
    def _instances(self) -> GcpConfig:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) is above max_instances "
                f"({self.max_instances})"
            )
        return self


class TrafficConfig(Section):
    """`traffic:` the load `slml preview` prices its monthly cost estimate at."""

    requests_per_month: int = Field(default=1_000_000, ge=0, le=10**12)
    avg_duration_ms: float | None = Field(
        default=None, gt=0, le=900_000,
        description="time per request, platform overhead included; default: the local "
        "deployment's logged predict latency (else 10 ms) plus the platform's overhead",
    )  # fmt: skip


class AzureConfig(Section):
    """`azure:` an Azure Function App (Flex Consumption by default)."""

    region: AzureLocation = "eastus"
    plan: Literal["flex", "consumption"] = "flex"
    python_version: Literal["3.10", "3.11", "3.12"] = "3.11"
    memory: Literal[512, 2048, 4096] = Field(default=2048, description="MB, Flex only")
    max_instances: int = Field(default=40, ge=1, le=1000)
    auth: Literal["function", "none"] = "function"
    package_sas_days: int = Field(
        default=365,
        ge=60,
        le=730,
        description="consumption plan: days the package URL's read-only SAS is valid, from "
        "the first day of the deploy's month; deploy again before it expires",
    )
    env: EnvVars = Field(default_factory=dict)


_REQUIREMENT = r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*([<>=!~;@ ].*)?$"
_DIST_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class RequirementsConfig(Section):
    """`requirements:` changes to the artifact's derived requirements, applied when a
    bundle is built (the artifact itself is never changed): ``remove`` names, ``replace``
    a name by another requirement, ``add`` (re-pins a name already there)."""

    add: list[Annotated[str, Field(pattern=_REQUIREMENT)]] = Field(default_factory=list)
    remove: list[Annotated[str, Field(pattern=_DIST_NAME)]] = Field(default_factory=list)
    replace: dict[Annotated[str, Field(pattern=_DIST_NAME)],
                  Annotated[str, Field(pattern=_REQUIREMENT)]] = Field(default_factory=dict)


def _checked_url(value: str) -> str:
    from slml.bundle.sources import check_url

    return check_url(value, "the URL")


IndexUrl = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=r"^(https?|file)://"),
    AfterValidator(_checked_url),
]  # fmt: skip
FindLink = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_checked_url)]


class PackagesConfig(Section):
    """`packages:` where the bundle's packages come from, for every target (uv resolving
    and installing, and pip in the container build). Credentials come from the
    environment: write ``https://user:${TOKEN}@host/simple``; a literal password is
    refused. uv's variables (UV_INDEX_URL, UV_EXTRA_INDEX_URL, UV_FIND_LINKS,
    UV_CONSTRAINT, ...) still apply; UV_INDEX_URL replaces ``index_url``."""

    index_url: IndexUrl | None = Field(
        default=None, description="replaces PyPI (a private mirror, e.g. https://host/simple)"
    )
    extra_index_urls: list[IndexUrl] = Field(
        default_factory=list, max_length=20, description="searched before the default index"
    )
    find_links: list[FindLink] = Field(
        default_factory=list, max_length=20,
        description="directories (relative to slml.yaml) or URLs of wheel files; a local "
        "directory's wheels the lock uses are copied into the container build context",
    )  # fmt: skip
    cpu_torch: bool = Field(
        default=True,
        description="when torch is required: a find-links torch wheel, else PyTorch's CPU "
        "index (https://download.pytorch.org/whl/cpu), never PyPI's CUDA build",
    )
