"""``--provider sagemaker``: a SageMaker endpoint from slml's container image.

Build writes the container context and ``model.tar.gz``; plan/deploy/destroy come from
``PulumiProvider`` running ``SageMakerModel``. ``invoke`` calls
``sagemaker-runtime.invoke_endpoint``, ``status`` ``sagemaker.describe_endpoint`` and
``logs`` reads the endpoint's CloudWatch Logs group ``/aws/sagemaker/Endpoints/<name>``
(``aws_ops.tail_logs``), all with boto3 (an injectable Session; tests use moto) through
``sagemaker_ops``, which also has ``upload_model_tar`` (a ``model.tar.gz`` into S3, for
a model-only update outside Pulumi, or a prebuilt image).

Rollouts (``ctx.rollout``, ``shift``), instance endpoints only: each live version is a
production variant ``v<N>`` with its own Model; ``--canary P`` weighs the live variant
at (100-P)/100 and the new one at P/100; ``--shadow`` adds the new version as a shadow
variant (SageMaker copies every call to it and discards its answer), with the data
capture the config asks for. Older versions keep their recorded image and model data
(the ``models`` output). A serverless endpoint has one variant and no shadow: both
modes are refused there with the reason and what to use instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from slml.bundle.served_env import with_model_env
from slml.config.sections import SageMakerConfig
from slml.engine import Program
from slml.errors import DeployError, ProviderUnavailable
from slml.pipeline import DeploymentState
from slml.providers import aws_ops, container_ops, sagemaker_ops
from slml.providers import traffic as tr
from slml.providers.base import Bundle, DeployResult, ProviderContext, Status
from slml.providers.outputs import SageMakerOutputs
from slml.providers.rollout_base import RolloutProvider, export_traffic
from slml.rollout import LiveVersion

_STATES: dict[str, DeploymentState] = {
    "InService": "running", "Failed": "down", "OutOfService": "down",
}  # fmt: skip
LOGS_MISSING_HINT = (
    "SageMaker creates it when the endpoint's container first starts; "
    "`slml status --provider sagemaker` shows whether the endpoint is InService"
)


SERVERLESS_INSTEAD = (
    "set sagemaker.instance_type (e.g. ml.m5.large) for an instance endpoint, which "
    "weighs variants and runs shadows; or --provider aws for a serverless canary "
    "(Lambda alias weights)"
)


class SageMakerProvider(RolloutProvider):
    name: ClassVar[str] = "sagemaker"
    config_model = SageMakerConfig
    plugin_packages = (("aws", "pulumi_aws"), ("docker-build", "pulumi_docker_build"))
    max_answering: ClassVar[int] = 10  # production variants per endpoint configuration

    def __init__(
        self,
        *,
        session: Any = None,
        docker_check: container_ops.DockerCheck = container_ops.docker_problem,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._session = session
        self._docker_check = docker_check
        self._sleep = sleep

    def build(self, *, ctx: ProviderContext) -> Bundle:
        cfg = self.section(ctx)
        return container_ops.build(ctx, self.name, python_version=cfg.python_version, tarball=True)

    def check_rollout(self, ctx: ProviderContext) -> None:
        mode = tr.mode(ctx)
        if mode != "replace" and self.section(ctx).instance_type is None:
            raise serverless_refusal(f"deploy --{mode}")

    def default_ref(self, version: int) -> str | None:
        return f"v{version}"

    def program(
        self, *, ctx: ProviderContext, bundle: Bundle,
        traffic: tuple[LiveVersion, ...] | None = None,
    ) -> Program:  # fmt: skip
        """The inline program; ``traffic`` is the live set a shift routes (default: the
        one ``ctx.rollout`` asks for)."""
        from dataclasses import replace

        from slml.infra.sagemaker import SageMakerSpec, check_variant, with_project_capture

        cfg = self.section(ctx)
        spec = SageMakerSpec.from_config(
            cfg, name=ctx.name, stage=ctx.stage, image=container_ops.image_source(cfg, bundle),
            model_tar=bundle.files["model_tar"], sha=bundle.model_sha256,
        )  # fmt: skip
        if traffic is None:
            version, live, pinned = ctx.state.next_version(ctx.stage, self.name), None, None
            live = self.planned_traffic(ctx)
        else:
            record = self.record(ctx)
            version, live = int(record["version"]), traffic
            pinned = SageMakerOutputs.of(record).image
        live = tuple(replace(v, ref=f"v{v.version}") for v in live)
        if traffic is not None and cfg.instance_type is None and len(live) > 1:
            raise serverless_refusal("split traffic")
        known = recorded_models(ctx, self.name)
        spec = replace(spec, variants=variants(live, version, known), pinned_image=pinned)
        spec = with_model_env(spec, ctx, "sagemaker")  # slml.yaml env:, the model's
        spec = with_project_capture(spec, ctx.config.capture)  # native data capture
        check_variant(spec)
        exported = [v.to_json() for v in live]

        def run() -> None:
            import pulumi

            from slml.infra.sagemaker import SageMakerModel

            model = SageMakerModel(f"{ctx.name}-{ctx.stage}", spec)
            pulumi.export("url", model.url)
            pulumi.export("endpoint_name", model.endpoint_name)
            pulumi.export("image", model.image)
            pulumi.export("model_data_url", model.model_data_url)
            pulumi.export("region", cfg.region)
            export_traffic(ctx, "sagemaker", exported)
            pulumi.export("models", models_output(known, version, model))

        return run

    def describe_traffic(self, live: tuple[LiveVersion, ...]) -> list[str]:
        parts = [
            f"v{v.version} weight {v.percent / 100:g} ({v.percent:g}% {v.role})"
            if v.role != "shadow" else f"v{v.version} shadow variant (a copy of every call)"
            for v in live
        ]  # fmt: skip
        return ["traffic: variants " + ", ".join(parts)]

    def stack_config(self, ctx: ProviderContext) -> dict[str, str]:
        return {"aws:region": self.section(ctx).region}

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        source = container_ops.image_source(self.section(ctx), bundle)
        container_ops.require_builder(self.name, source, self._docker_check)
        return super().deploy(ctx=ctx, bundle=bundle)

    def _endpoint(self, ctx: ProviderContext) -> tuple[dict[str, Any], str, str]:
        record = self.record(ctx)
        out = SageMakerOutputs.of(record)
        return record, out.need("endpoint_name"), out.region or self.section(ctx).region

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        _, endpoint, region = self._endpoint(ctx)
        return sagemaker_ops.invoke_endpoint(endpoint, payload, region=region,
                                             session=self._session)  # fmt: skip

    def status(self, *, ctx: ProviderContext) -> Status:
        record, endpoint, region = self._endpoint(ctx)
        details = sagemaker_ops.describe_endpoint(endpoint, region=region, session=self._session)
        return Status(
            provider=self.name,
            stage=ctx.stage,
            state=_STATES.get(details["endpoint_status"], "deployed"),
            url=record.get("url"),
            version=record.get("version"),
            details=details,
            traffic=self.recorded_traffic(ctx),
        )

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """The endpoint container's last ``lines`` log lines (the runtime's JSON request
        lines among them), oldest first; ``follow`` keeps polling every 2 s."""
        _, endpoint, region = self._endpoint(ctx)
        return aws_ops.tail_logs(
            log_group=sagemaker_ops.log_group(endpoint), region=region, lines=lines, follow=follow,
            session=self._session, missing_hint=LOGS_MISSING_HINT, sleep=self._sleep,
        )  # fmt: skip


def recorded_models(ctx: ProviderContext, provider: str) -> dict[int, dict[str, str]]:
    """version → {image, model_data_url} for the versions the stack serves now: the
    ``models`` output, else (a stack deployed before rollouts) the single version's."""
    rec = ctx.state.read_record(ctx.stage, provider) or {}
    out = SageMakerOutputs.of(rec)
    if out.models:
        return {int(k): v for k, v in out.models.items()}
    if rec.get("version") and out.image and out.model_data_url:
        return {int(rec["version"]): {"image": out.image,
                                      "model_data_url": out.model_data_url}}  # fmt: skip
    return {}


def variants(
    live: tuple[LiveVersion, ...], version: int, models: dict[int, dict[str, str]]
) -> tuple[Any, ...]:
    """The endpoint's variants for ``live``: ``version`` (this deploy's, or a shift's
    deployed one) uses the program's own image and model; older versions their
    recorded ones. Raises DeployError for a version whose model is not recorded."""
    from slml.infra.sagemaker import Variant

    out = []
    for v in live:
        weight = 1.0 if v.role == "shadow" else round(v.percent / 100.0, 4)
        if v.version == version:
            out.append(Variant(version=v.version, weight=weight, shadow=v.role == "shadow"))
            continue
        model = models.get(v.version)
        if model is None:
            raise DeployError(
                f"the image and model data of version {v.version} are not recorded for this "
                "endpoint, so it cannot serve beside the new one",
                hint="run `slml deploy --provider sagemaker` once without --canary/--shadow",
            )
        out.append(Variant(version=v.version, weight=weight, shadow=v.role == "shadow",
                           image=model["image"], model_data_url=model["model_data_url"]))
    return tuple(out)


def models_output(known: dict[int, dict[str, str]], version: int, model: Any) -> Any:
    """The ``models`` output: the image and model data URL of the versions served lately
    (``known``, newest kept) and of ``version``, so a rollback can serve an old one."""
    import pulumi

    def merge(parts: list[Any]) -> dict[str, dict[str, str]]:
        merged = {**known, version: {"image": parts[0], "model_data_url": parts[1]}}
        return {str(k): merged[k] for k in sorted(merged)[-tr.KEEP_VERSIONS:]}

    return pulumi.Output.all(model.image, model.model_data_url).apply(merge)


def serverless_refusal(what: str) -> ProviderUnavailable:
    """Why a serverless endpoint cannot ``what``, with the documents and what to use."""
    from slml.infra.sagemaker import SERVERLESS_DOCS, SHADOW_DOCS

    why = ("a serverless endpoint serves exactly one production variant, so its traffic "
           "cannot be weighted between versions, and it takes no shadow variant "
           f"({SERVERLESS_DOCS}, {SHADOW_DOCS})")  # fmt: skip
    return tr.refuse("sagemaker", what, why, SERVERLESS_INSTEAD)
