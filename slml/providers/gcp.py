"""``--provider gcp``: Google Cloud Run from slml's container image.

Build writes the container context; plan/deploy/destroy come from ``PulumiProvider``
running ``CloudRunModel``. ``status`` reads the service with google-cloud-run's
``ServicesClient``; ``invoke`` posts to ``<url>/predict`` with httpx, carrying a Google
ID token for the service URL (google-auth) unless ``auth: none``; ``logs`` reads the
service's entries from Cloud Logging. Every client call is in ``gcp_ops``. Clients,
token getters, transport and sleep are injected for tests.

Rollouts (``ctx.rollout``, ``shift``): each deploy's revision is named
``<service>-v<N>``; ``--canary P`` lists the live revision at 100-P and the new one at
P in the service's ``traffics``, each tagged ``v<N>`` so every live version has its own
URL. ``--shadow`` is refused: Cloud Run splits traffic but never mirrors it. A shift
re-applies the deployed template (the recorded image) with new percents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx

from slml.bundle.served_env import with_model_env
from slml.capture import capture_env
from slml.config.sections import GcpConfig
from slml.engine import Program
from slml.errors import DeployError
from slml.providers import container_ops, gcp_ops
from slml.providers import traffic as tr
from slml.providers.base import Bundle, DeployResult, ProviderContext, Status
from slml.providers.outputs import GcpOutputs
from slml.providers.rollout_base import RolloutProvider, export_traffic
from slml.rollout import LiveVersion

SHADOW_WHY = (
    "Cloud Run splits traffic among revisions but cannot send a copy of a request to a "
    "second one, so there is no native shadow traffic"
)
SHADOW_INSTEAD = (
    "use --canary with a small share (e.g. --canary 5), or call the new version on its "
    "own tagged URL (https://v<N>---<service host>) without giving it traffic"
)


class GcpProvider(RolloutProvider):
    name: ClassVar[str] = "gcp"
    config_model = GcpConfig
    plugin_packages = (("gcp", "pulumi_gcp"), ("docker-build", "pulumi_docker_build"))
    ref_output: ClassVar[str] = "revision"
    max_answering: ClassVar[int] = 100  # Cloud Run splits among any number of revisions

    def __init__(
        self,
        *,
        services_client: Callable[[], Any] = gcp_ops.services_client,
        token_fetcher: gcp_ops.TokenFetcher = gcp_ops.fetch_id_token,
        transport: httpx.BaseTransport | None = None,
        docker_check: container_ops.DockerCheck = container_ops.docker_problem,
        logging_token: gcp_ops.TokenGetter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._services_client = services_client
        self._token = token_fetcher
        self._transport = transport
        self._docker_check = docker_check
        self._logging_token = logging_token
        self._sleep = sleep

    def build(self, *, ctx: ProviderContext) -> Bundle:
        cfg = self.section(ctx)
        bundle = container_ops.build(
            ctx, self.name, python_version=cfg.python_version, tarball=False,
            gpu=cfg.gpu is not None,
        )  # fmt: skip
        if cfg.gpu is None:
            return bundle
        from dataclasses import replace

        note = (f"gcp.gpu {cfg.gpu}: dependencies keep their CUDA-capable builds (no "
                "CPU-only variants); Cloud Run provides the NVIDIA driver")  # fmt: skip
        return replace(bundle, notes=(*bundle.notes, note))

    def check_rollout(self, ctx: ProviderContext) -> None:
        if tr.mode(ctx) == "shadow":
            raise tr.refuse(self.name, "deploy --shadow", SHADOW_WHY, SHADOW_INSTEAD)

    def program(
        self, *, ctx: ProviderContext, bundle: Bundle,
        traffic: tuple[LiveVersion, ...] | None = None,
    ) -> Program:  # fmt: skip
        """The inline program; ``traffic`` is the live set a shift routes (default: the
        one ``ctx.rollout`` asks for). Raises ProviderUnavailable for a shadow."""
        from dataclasses import replace

        from slml.infra.cloudrun import CloudRunSpec, revision_name

        cfg = self.section(ctx)
        source = container_ops.image_source(cfg, bundle)
        spec = CloudRunSpec.from_config(cfg, name=ctx.name, stage=ctx.stage, image=source)
        if traffic is None:
            version = ctx.state.next_version(ctx.stage, self.name)
            live, pinned = self.planned_traffic(ctx), None
        else:
            record = self.record(ctx)
            version, live = int(record["version"]), traffic
            pinned = GcpOutputs.of(record).image
        revision = revision_name(spec.service, version)
        live = tr.resolve_new(live, revision)
        spec = replace(spec, revision=revision, traffic=revision_traffic(live),
                       pinned_image=pinned)  # fmt: skip
        exported = [v.to_json() for v in live]
        spec = with_model_env(spec, ctx, "gcp")  # slml.yaml env:, the model's, threads
        spec = replace(spec, env={**spec.env, **capture_env(ctx.config, default=None)})

        def run() -> None:
            import pulumi

            from slml.infra.cloudrun import CloudRunModel

            model = CloudRunModel(f"{ctx.name}-{ctx.stage}", spec)
            pulumi.export("url", model.url)
            pulumi.export("latest_ready_revision", model.latest_ready_revision)
            pulumi.export("service_name", model.service_name)
            pulumi.export("image", model.image)
            pulumi.export("project", model.project)
            pulumi.export("region", cfg.region)
            pulumi.export("revision", revision)
            export_traffic(ctx, "gcp", exported)

        return run

    def plan_notes(self, ctx: ProviderContext) -> list[str]:
        cfg = self.section(ctx)
        if cfg.gpu is None:
            return []
        redundancy = "on" if cfg.gpu_zonal_redundancy else "off"
        return [
            f"gpu: {cfg.gpu_count} x {cfg.gpu} per instance (limit nvidia.com/gpu, "
            f"node_selector.accelerator {cfg.gpu}), {cfg.cpu} vCPU / {cfg.memory}, CPU "
            f"always allocated (instance-based billing), GPU zonal redundancy {redundancy}"
        ]

    def preview_traffic(self, ctx: ProviderContext) -> tuple[LiveVersion, ...]:
        from slml.infra.cloudrun import revision_name, service_name

        version = ctx.state.next_version(ctx.stage, self.name)
        revision = revision_name(service_name(ctx.name, ctx.stage), version)
        return tr.resolve_new(self.planned_traffic(ctx), revision)

    def describe_traffic(self, live: tuple[LiveVersion, ...]) -> list[str]:
        return describe_traffic(live)

    def warnings(self, ctx: ProviderContext) -> list[str]:
        if self.section(ctx).auth == "none":
            return [
                "gcp.auth is none: the Cloud Run service will be PUBLIC, anyone with the "
                "URL can call it (allUsers get roles/run.invoker)"
            ]
        return []

    def stack_config(self, ctx: ProviderContext) -> dict[str, str]:
        cfg = self.section(ctx)
        config = {"gcp:region": cfg.region}
        if cfg.project:
            config["gcp:project"] = cfg.project
        return config

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        source = container_ops.image_source(self.section(ctx), bundle)
        container_ops.require_builder(self.name, source, self._docker_check)
        return super().deploy(ctx=ctx, bundle=bundle)

    def status(self, *, ctx: ProviderContext) -> Status:
        """The live service: URL, latest ready revision, traffic split, readiness."""
        record = self.record(ctx)
        out = GcpOutputs.of(record)
        name = out.service_path(out.project or self.section(ctx).project)
        service = self._services_client().get_service(name=name)
        return Status(
            provider=self.name,
            stage=ctx.stage,
            state=gcp_ops.service_state(service),
            url=service.uri or record.get("url"),
            version=record.get("version"),
            details=gcp_ops.service_details(service),
            traffic=self.recorded_traffic(ctx),
        )

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``<url>/predict``; with ``auth: iam`` as the caller's
        Google identity. Raises InvokeError on a transport failure or non-2xx answer."""
        url = self.record(ctx)["url"].rstrip("/")
        headers = {}
        if self.section(ctx).auth == "iam":
            headers["Authorization"] = f"Bearer {self._token(url)}"
        return gcp_ops.post_json(f"{url}/predict", payload, headers=headers,
                                 transport=self._transport)  # fmt: skip

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """The service's last ``lines`` log entries from Cloud Logging, oldest first
        (the runtime's JSON request lines, request logs, system messages); ``follow``
        keeps polling. Needs roles/logging.viewer."""
        out = GcpOutputs.of(self.record(ctx))
        project = out.project or self.section(ctx).project
        if not project:
            raise DeployError(
                "the gcp deployment record names no project",
                hint="set gcp.project in slml.yaml, or run `slml deploy --provider gcp` "
                "again to record it",
            )
        return gcp_ops.tail_logs(
            project=project, service=out.need("service_name"),
            region=out.region or self.section(ctx).region, lines=lines, follow=follow,
            token_getter=self._logging_token, transport=self._transport, sleep=self._sleep,
        )  # fmt: skip


def revision_traffic(live: tuple[LiveVersion, ...]) -> tuple[Any, ...]:
    """The service's ``traffics``: each live revision by name, its whole percent and tag
    ``v<N>``. Raises ProviderUnavailable for a shadow and DeployError for a share that
    is not a whole percent (Cloud Run's traffic percents are integers)."""
    from slml.infra.cloudrun import RevisionTraffic

    if any(v.role == "shadow" for v in live):
        raise tr.refuse("gcp", "route to a shadow version", SHADOW_WHY, SHADOW_INSTEAD)
    out = []
    for v in live:
        if v.percent != int(v.percent):
            raise DeployError(
                f"{v.percent:g}% for version {v.version}: Cloud Run splits traffic in whole "
                "percents", hint="e.g. --canary 10",
            )  # fmt: skip
        out.append(RevisionTraffic(revision=str(v.ref), percent=int(v.percent),
                                   tag=f"v{v.version}"))  # fmt: skip
    return tuple(out)


def describe_traffic(live: tuple[LiveVersion, ...]) -> list[str]:
    """The revision traffic in words, for the plan's notes."""
    parts = [
        f"{v.ref or '(this deploy)'} {v.percent:g}% {v.role} (tag v{v.version})"
        for v in live
    ]
    return ["traffic: revisions " + ", ".join(parts)]
