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
    ValidationInfo,
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


class GuardConfig(Section):
    """`rollout.guard:` when a canary is rolled back on its own figures."""

    max_error_rate: float = Field(default=0.05, ge=0, le=1, description="5xx share")
    max_p99_ms: float | None = Field(default=None, gt=0, le=600_000, description="p99 latency")
    window: float = Field(default=60.0, gt=0, le=3600, description="seconds watched")
    min_requests: int = Field(default=20, ge=1, le=1_000_000,
                              description="fewer answered requests: no judgement")


class RolloutConfig(Section):
    """`rollout:` defaults of `slml deploy --canary/--shadow/--guard`."""

    canary_percent: float = Field(default=10.0, gt=0, lt=100, description="percent")
    guard: GuardConfig | None = Field(default=None, description="watch every canary")
    auto_promote: bool = Field(default=False, description="promote a canary the guard held")
    sticky_header: str | None = Field(default=None, min_length=1, max_length=128,
                                      pattern=r"^[A-Za-z0-9-]+$",
                                      description="local: a header whose hash picks the version")


class BatchingConfig(Section):
    """`batching:` merge concurrent requests into one predict call (slml/runtime/batching.py)."""

    max_batch_size: int = Field(default=64, ge=1, le=100_000, description="rows per call")
    max_latency_ms: float = Field(default=5.0, ge=0, le=10_000, description="wait to fill")

    def env(self) -> dict[str, str]:
        """The runtime's settings for it (``SLML_BATCH_MAX_SIZE``, ``..._LATENCY_MS``)."""
        return {"SLML_BATCH_MAX_SIZE": str(self.max_batch_size),
                "SLML_BATCH_MAX_LATENCY_MS": str(self.max_latency_ms)}  # fmt: skip


class CaptureConfig(Section):
    """`capture:` record a sample of requests and answers (they may hold personal data)."""

    sample: float = Field(default=1.0, ge=0, le=1, description="share of requests recorded")
    inputs_only: bool = Field(default=False, description="leave the answers out")
    sink: str | None = Field(
        default=None, max_length=1024, pattern=r"^(s3://|gs://|az://|file://|/)",
        description="s3://, gs://, az:// prefix or a directory; default .slml/<stage>/capture",
    )  # fmt: skip
    max_file_mb: float = Field(default=64, gt=0, le=4096, description="file sink rotation")


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
    bytecode: Literal["auto", "always", "full", "never"] = Field(
        default="auto",
        description="ship .pyc compiled for the runtime's Python (unchecked-hash), so cold "
        "starts skip compiling: auto when an interpreter of that exact version is on this "
        "machine and the bundle stays under 250 MB; always fails without one; never ships "
        "none. The layer keeps the .pyc of what importing the model's frameworks reads, as "
        "bytecode only (see requirements.source_code), the rest as source; full keeps every "
        "module's .pyc and every source (and fails without an interpreter)",
    )
    snap_start: bool = Field(
        default=False, description="Lambda SnapStart: python3.12+ zip functions; the API "
        "then calls a published version through the `live` alias",
    )
    keep_versions: int | None = Field(
        default=None, ge=1, le=100,
        description="published versions kept beside the live ones after each deploy or "
        "traffic shift; older ones are deleted (SnapStart bills a cache per version kept). "
        "Default: 3 with snap_start, else every version is kept",
    )  # fmt: skip
    tags: Tags = Field(default_factory=dict)
    env: EnvVars = Field(default_factory=dict)

    @model_validator(mode="after")
    def _snap_start(self) -> AwsConfig:
        if self.snap_start and (self.runtime < "python3.12" or self.provisioned_concurrency
                                or self.ephemeral_storage > 512):  # fmt: skip
            raise ValueError("snap_start needs runtime python3.12 or later, no "
                             "provisioned_concurrency and ephemeral_storage 512 (AWS's rules)")
        return self

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


# Cloud Run GPU limits, from cloud.google.com/run/docs/configuring/services/gpu (late
# 2026, also ../shared/CLOUD-REFERENCE.md): an NVIDIA L4 (24 GB) needs at least 4 vCPU
# and 16 GiB; one GPU per instance; instance-based billing (CPU always allocated).
GPU_LIMITS_SOURCE = "cloud.google.com/run/docs/configuring/services/gpu"
GPU_MIN_CPU = {"nvidia-l4": 4}
GPU_MIN_MEMORY_MIB = {"nvidia-l4": 16 * 1024}
GPU_MAX_PER_INSTANCE = 1
# the most memory each CPU count allows (cloud.google.com/run/docs/configuring/services/cpu)
CPU_MAX_MEMORY_MIB = {"1": 4096, "2": 8192, "4": 16384, "6": 24576, "8": 32768}


def memory_mib(value: str) -> int:
    """``512Mi`` → 512, ``16Gi`` → 16384 (the config's pattern allows only these units)."""
    return int(value[:-2]) * (1024 if value.endswith("Gi") else 1)


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
    # declared before cpu and memory: their validators read it
    gpu: Literal["nvidia-l4"] | None = Field(
        default=None, description="a GPU per instance (instance-based billing; regions: "
        "cloud.google.com/run/docs/configuring/services/gpu)",
    )  # fmt: skip
    gpu_count: int = Field(default=1, ge=1, le=GPU_MAX_PER_INSTANCE,
                           description="GPUs per instance; Cloud Run attaches one")  # fmt: skip
    gpu_zonal_redundancy: bool = Field(
        default=True, description="GPU capacity reserved in other zones for failover (the "
        "platform's default); false costs less and may not get an instance in an outage",
    )  # fmt: skip
    cpu: Literal["1", "2", "4", "6", "8"] = Field(default="1", validate_default=True)
    memory: str = Field(
        default="1Gi", max_length=10, pattern=r"^[0-9]+(Mi|Gi)$", validate_default=True
    )
    min_instances: int = Field(default=0, ge=0, le=1000)
    max_instances: int = Field(default=10, ge=1, le=1000)
    concurrency: int = Field(default=80, ge=1, le=1000)
    timeout: int = Field(default=300, ge=1, le=3600, description="seconds")
    auth: Literal["iam", "none"] = "iam"
    image_uri: Uri | None = Field(default=None, description="prebuilt image; skips the build")
    python_version: Literal["3.11", "3.12", "3.13"] = "3.11"
    env: EnvVars = Field(default_factory=dict)

    @field_validator("cpu")
    @classmethod
    def _gpu_cpu(cls, value: str, info: ValidationInfo) -> str:
        gpu = info.data.get("gpu")
        if gpu and int(value) < GPU_MIN_CPU[gpu]:
            raise ValueError(
                f"{value} vCPU is below the {GPU_MIN_CPU[gpu]} vCPU Cloud Run requires with "
                f"gpu: {gpu}; set cpu: \"{GPU_MIN_CPU[gpu]}\" or more ({GPU_LIMITS_SOURCE})"
            )
        return value

    @field_validator("memory")
    @classmethod
    def _gpu_memory(cls, value: str, info: ValidationInfo) -> str:
        gpu = info.data.get("gpu")
        if gpu and memory_mib(value) < GPU_MIN_MEMORY_MIB[gpu]:
            need = GPU_MIN_MEMORY_MIB[gpu] // 1024
            raise ValueError(
                f"{value} is below the {need}Gi Cloud Run requires with gpu: {gpu}; set "
                f"memory: {need}Gi or more ({GPU_LIMITS_SOURCE})"
            )
        cpu = info.data.get("cpu")
        if cpu and memory_mib(value) > CPU_MAX_MEMORY_MIB[cpu]:
            raise ValueError(
                f"{value} is above the {CPU_MAX_MEMORY_MIB[cpu] // 1024}Gi Cloud Run allows "
                f"with cpu: \"{cpu}\" (cloud.google.com/run/docs/configuring/services/cpu)"
            )
        return value

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
    a name by another requirement, ``add`` (re-pins a name already there); and whether
    the installed modules ship their sources (``source_code``) and their shared libraries
    their symbol tables (``symbols``)."""

    add: list[Annotated[str, Field(pattern=_REQUIREMENT)]] = Field(default_factory=list)
    remove: list[Annotated[str, Field(pattern=_DIST_NAME)]] = Field(default_factory=list)
    replace: dict[Annotated[str, Field(pattern=_DIST_NAME)],
                  Annotated[str, Field(pattern=_REQUIREMENT)]] = Field(default_factory=dict)
    source_code: Literal["auto", "keep"] = Field(
        default="auto",
        description="auto: the installed modules a cold start reads ship as bytecode only "
        "(the Lambda layer and the container image; proved at build by importing the "
        "frameworks again without their sources), so tracebacks through them name file and "
        "line but show no source text; keep: every module ships its .py (larger)",
    )
    symbols: Literal["strip", "keep"] = Field(
        default="strip",
        description="strip: the installed shared libraries lose their symbol tables and "
        "debug info (the Lambda layer and the container image; the loader reads neither); "
        "keep: they ship as the wheels have them, for perf or gdb on a deployed function "
        "(larger)",
    )


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
