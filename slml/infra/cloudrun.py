"""``slml:gcp:CloudRunModel``: a model served by Google Cloud Run from slml's image.

Children: an Artifact Registry repository (format DOCKER) and the image pushed to it
(only when building; a prebuilt ``image_uri`` needs neither), a ``cloudrunv2.Service``
with ``deletion_protection=False`` so ``slml destroy`` works, and a public
``roles/run.invoker`` binding for ``allUsers`` ONLY when ``auth: none``; otherwise
callers need a Google ID token for the service URL. Outputs: ``url``,
``latest_ready_revision``, ``image``, ``service_name``, ``project`` (the provider's
default project when ``gcp.project`` is unset).

Traffic: each deploy's revision is named ``<service>-v<N>`` (``template.revision``) and
``traffics`` lists every live revision by name with its percent and a tag ``v<N>``, so
each version is also reachable at its own URL (``https://v<N>---<service host>``).
A shift re-applies the same template (same revision name, the recorded image) with new
percents; Cloud Run then creates no revision.

GPUs (``gpu``): the container's limits get ``nvidia.com/gpu``, the template a
``node_selector.accelerator``, CPU is always allocated (``cpu_idle=False``:
instance-based billing, which GPUs require) and ``gpu_zonal_redundancy_disabled`` is
set from ``gpu_zonal_redundancy``. Limits are checked in slml.config (GcpConfig).

Captured traffic (``SLML_CAPTURE`` in ``env`` with a ``gs://BUCKET/PREFIX`` sink): the
service runs as its own service account (``<service>-slml``, no other role), which gets
``roles/storage.objectCreator`` on the bucket through a ``storage.BucketIAMMember``
whose IAM condition limits it to objects under the prefix (conditions need uniform
bucket-level access on that bucket; the runtime only creates objects, never reads,
lists or overwrites). Without such a sink the service keeps the project's default
compute service account and the plan grants no storage role.

Naming, environment and access rules are pure functions beside the component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pulumi

from slml.errors import ConfigError
from slml.infra.capture_grant import ENV_VAR as CAPTURE_VAR
from slml.infra.capture_grant import gcs_prefix_condition, object_sink
from slml.infra.image import ImageSource, container_image

TYPE = "slml:gcp:CloudRunModel"
CONTAINER_PORT = 8080
MODEL_DIR = "/app/model"
# Set by Cloud Run itself; a service that sets them is rejected by the API.
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})
_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class RevisionTraffic:
    """One live revision: its name, whole percent of traffic and its tag."""

    revision: str
    percent: int
    tag: str


@dataclass(frozen=True)
class CloudRunSpec:
    """Everything the component needs, as plain data (see ``from_config``)."""

    service: str
    region: str
    image: ImageSource
    project: str | None = None
    cpu: str = "1"
    memory: str = "1Gi"
    min_instances: int = 0
    max_instances: int = 10
    concurrency: int = 80
    timeout: int = 300
    auth: Literal["iam", "none"] = "iam"
    env: dict[str, str] = field(default_factory=dict)
    revision: str | None = None  # this template's revision name (``revision_name``)
    traffic: tuple[RevisionTraffic, ...] = ()  # empty: all to the latest revision
    gpu: str | None = None  # e.g. "nvidia-l4"
    gpu_count: int = 1
    gpu_zonal_redundancy: bool = True
    pinned_image: str | None = None  # a shift: serve this recorded image, build nothing

    @classmethod
    def from_config(cls, cfg: object, *, name: str, stage: str, image: ImageSource) -> CloudRunSpec:
        """From the ``gcp:`` section of slml.yaml (``slml.config.GcpConfig``)."""
        return cls(
            service=service_name(name, stage),
            region=cfg.region,
            project=cfg.project,
            image=image,
            cpu=cfg.cpu,
            memory=cfg.memory,
            min_instances=cfg.min_instances,
            max_instances=cfg.max_instances,
            concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            auth=cfg.auth,
            env=dict(cfg.env),
            gpu=cfg.gpu,
            gpu_count=cfg.gpu_count,
            gpu_zonal_redundancy=cfg.gpu_zonal_redundancy,
        )


def service_name(name: str, stage: str) -> str:
    """``<name>-<stage>`` as Cloud Run allows it: lowercase letters, digits and dashes,
    starting with a letter, at most 49 characters."""
    raw = _NAME.sub("-", f"{name}-{stage}".lower()).strip("-")
    if not raw or not raw[0].isalpha():
        raw = f"m-{raw}"
    return raw[:49].rstrip("-")


def revision_name(service: str, version: int) -> str:
    """``<service>-v<N>``: Cloud Run wants a revision name prefixed by its service's."""
    return f"{service}-v{version}"


def resource_limits(spec: CloudRunSpec) -> dict[str, str]:
    """The container's limits: cpu, memory and, with a GPU, ``nvidia.com/gpu``."""
    limits = {"cpu": spec.cpu, "memory": spec.memory}
    if spec.gpu:
        limits["nvidia.com/gpu"] = str(spec.gpu_count)
    return limits


def container_env(spec: CloudRunSpec) -> dict[str, str]:
    """The container's environment: the user's ``gcp.env`` plus SLML_MODEL_DIR, and a
    request limit no lower than the service's ``concurrency``.
    Raises ConfigError for a variable Cloud Run reserves."""
    reserved = sorted(RESERVED_ENV & set(spec.env))
    if reserved:
        raise ConfigError(
            f"gcp.env: {', '.join(reserved)} is set by Cloud Run and cannot be configured",
            hint="remove it from gcp.env; the container reads $PORT as Cloud Run sets it",
        )
    # the runtime answers 503 past SLML_MAX_CONCURRENCY (256 by default): never below
    # what Cloud Run sends one instance
    limit = {"SLML_MAX_CONCURRENCY": str(max(spec.concurrency, 256))}
    return {**limit, **spec.env, "SLML_MODEL_DIR": MODEL_DIR}


def capture_account_id(service: str) -> str:
    """The capture service account's id: 6-30 characters, from the service's name."""
    return f"{service[:24].rstrip('-')}-slml"


def _capture_identity(
    name: str, spec: CloudRunSpec, parent: pulumi.Resource
) -> pulumi.Output[str] | None:
    """With a gs:// capture sink: the service account the service runs as, allowed to
    create objects under the sink's prefix only (see the module docstring)."""
    sink = object_sink(spec.env.get(CAPTURE_VAR), "gs")
    if sink is None:
        return None
    import pulumi_gcp as gcp

    bucket, prefix = sink
    child = pulumi.ResourceOptions(parent=parent)
    account = gcp.serviceaccount.Account(
        f"{name}-runtime", account_id=capture_account_id(spec.service), project=spec.project,
        display_name=f"slml {spec.service} (writes captured traffic)", opts=child,
    )  # fmt: skip
    gcp.storage.BucketIAMMember(
        f"{name}-capture-write",
        bucket=bucket,
        role="roles/storage.objectCreator",
        member=account.email.apply(lambda email: f"serviceAccount:{email}"),
        condition=gcp.storage.BucketIAMMemberConditionArgs(
            title="slml-capture-prefix",
            description=f"only objects under gs://{bucket}/{prefix}",
            expression=gcs_prefix_condition(bucket, prefix),
        ),
        opts=child,
    )
    return account.email


def is_public(spec: CloudRunSpec) -> bool:
    """True only for ``auth: none``: then allUsers may invoke the service."""
    return spec.auth == "none"


def _registry(name: str, spec: CloudRunSpec, parent: pulumi.Resource) -> pulumi.Output[str]:
    import pulumi_gcp as gcp

    repo = gcp.artifactregistry.Repository(
        f"{name}-images",
        repository_id=spec.service,
        location=spec.region,
        project=spec.project,
        format="DOCKER",
        description=f"slml images for {spec.service}",
        opts=pulumi.ResourceOptions(parent=parent),
    )
    repo_url = pulumi.Output.concat(
        spec.region, "-docker.pkg.dev/", repo.project, "/", repo.repository_id, "/model"
    )
    if spec.pinned_image:
        return pulumi.Output.from_input(spec.pinned_image)
    token = gcp.organizations.get_client_config_output(opts=pulumi.InvokeOptions(parent=parent))
    return container_image(
        f"{name}-image",
        source=spec.image,
        repository_url=repo_url,
        username="oauth2accesstoken",
        password=token.access_token,
        parent=parent,
    )


class CloudRunModel(pulumi.ComponentResource):
    """The Cloud Run service for one model and stage; see the module docstring."""

    url: pulumi.Output[str]
    latest_ready_revision: pulumi.Output[str]
    image: pulumi.Output[str]
    service_name: pulumi.Output[str]
    project: pulumi.Output[str]

    def __init__(
        self, name: str, spec: CloudRunSpec, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        import pulumi_gcp as gcp

        run = gcp.cloudrunv2
        child = pulumi.ResourceOptions(parent=self)
        self.image = (
            pulumi.Output.from_input(spec.image.image_uri)
            if spec.image.prebuilt
            else _registry(name, spec, self)
        )
        container = run.ServiceTemplateContainerArgs(
            image=self.image,
            ports=run.ServiceTemplateContainerPortsArgs(container_port=CONTAINER_PORT),
            resources=run.ServiceTemplateContainerResourcesArgs(
                limits=resource_limits(spec),
                cpu_idle=False if spec.gpu else None,  # GPUs need instance-based billing
            ),
            envs=[
                run.ServiceTemplateContainerEnvArgs(name=k, value=v)
                for k, v in sorted(container_env(spec).items())
            ],
        )
        gpu = (
            {"node_selector": run.ServiceTemplateNodeSelectorArgs(accelerator=spec.gpu),
             "gpu_zonal_redundancy_disabled": not spec.gpu_zonal_redundancy}
            if spec.gpu else {}
        )  # fmt: skip
        identity = _capture_identity(name, spec, self)
        service = run.Service(
            f"{name}-service",
            name=spec.service,
            location=spec.region,
            project=spec.project,
            deletion_protection=False,
            ingress="INGRESS_TRAFFIC_ALL",
            template=run.ServiceTemplateArgs(
                containers=[container],
                scaling=run.ServiceTemplateScalingArgs(
                    min_instance_count=spec.min_instances, max_instance_count=spec.max_instances
                ),
                max_instance_request_concurrency=spec.concurrency,
                timeout=f"{spec.timeout}s",
                revision=spec.revision,
                service_account=identity,
                **gpu,
            ),
            traffics=[
                run.ServiceTrafficArgs(
                    type="TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                    revision=t.revision,
                    percent=t.percent,
                    tag=t.tag,
                )
                for t in spec.traffic
            ]
            or None,
            opts=child,
        )
        if is_public(spec):
            run.ServiceIamMember(
                f"{name}-public",
                name=service.name,
                location=service.location,
                project=service.project,
                role="roles/run.invoker",
                member="allUsers",
                opts=child,
            )
        self.url = service.uri
        self.latest_ready_revision = service.latest_ready_revision
        self.service_name = service.name
        self.project = service.project
        self.register_outputs(
            {
                "url": self.url,
                "latest_ready_revision": self.latest_ready_revision,
                "image": self.image,
                "service_name": self.service_name,
                "project": self.project,
            }
        )
