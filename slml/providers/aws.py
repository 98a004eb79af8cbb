"""``--provider aws``: AWS Lambda behind an API Gateway HTTP API, through Pulumi.

Build: ``slml.bundle.lambda_bundle`` (layer keyed by the lock, function zip with the
runtime and model). Program: ``slml.infra.aws_lambda.LambdaModel`` with an explicit
``aws.Provider`` for ``aws.region``. Operations: ``slml.providers.aws_ops`` (boto3).

Auth (``aws.auth``), not public by default:

- ``iam`` (default): the route requires AWS_IAM; callers sign with SigV4 and need
  ``execute-api:Invoke`` on the API. ``slml invoke`` signs with your credentials.
- ``api_key``: a Lambda REQUEST authorizer on the route checks ``x-api-key`` before the
  model's function is invoked (HTTP APIs have no usage-plan keys; a REST API would
  change the endpoint and event shape), and the runtime checks it again against
  ``SLML_API_KEY``. The key is generated at first deploy (``secrets.token_urlsafe``),
  kept in ``.slml/aws/<stage>/api_key`` (mode 0600) and passed to Pulumi as a secret
  (encrypted in the stack state).

Abuse and cost limits: ``aws.throttle`` (``burst``, ``rate``) on the API Gateway stage,
and ``aws.reserved_concurrency`` caps the function's concurrent instances.
- ``none``: public; ``preview`` and ``deploy`` warn in plain words.

Rollouts (``ctx.rollout``, ``shift``): every deploy publishes a Lambda version and the
API calls the ``live`` alias. ``--canary P`` keeps the alias on the live version and
adds the new one as the alias's additional version at P/100 (Lambda weighs the
ADDITIONAL version; two versions per alias at most); promotion points the alias at the
new version with no additional weight. ``--shadow`` is refused: Lambda cannot mirror
a call to a second version. The live set is exported as the ``traffic`` output, each
version's ``ref`` being its Lambda version number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from slml.bundle import cache_dir
from slml.bundle.served_env import model_env
from slml.config import AwsConfig
from slml.engine import Program
from slml.errors import InvokeError, require_extra
from slml.infra.aws_policies import HTTP_API_TIMEOUT_MAX
from slml.pipeline import DeploymentState
from slml.providers import traffic as tr
from slml.providers.base import Bundle, DeployResult, ProviderContext, Status
from slml.providers.outputs import AwsOutputs
from slml.providers.rollout_base import RolloutProvider, export_traffic, traffic_output
from slml.rollout import LiveVersion
from slml.state import read_or_create_secret

PLACEHOLDER_KEY = "(generated at first deploy)"
SDK_MODULES = ("pulumi", "pulumi_aws")


KEEP_SNAPSTART_VERSIONS = 3  # published versions kept beside the live ones with SnapStart
SHADOW_WHY = (
    "a Lambda alias splits calls between two versions but cannot send a copy of a call "
    "to a second one, so there is no native shadow traffic"
)
SHADOW_INSTEAD = (
    "use --canary with a small share (e.g. --canary 5), or --provider sagemaker with an "
    "instance endpoint (shadow variants), or shadow on --provider local"
)


class AwsProvider(RolloutProvider):
    """AWS Lambda + API Gateway HTTP API."""

    name: ClassVar[str] = "aws"
    config_model: ClassVar[type[AwsConfig]] = AwsConfig
    plugin_packages = (("aws", "pulumi_aws"),)
    ref_output: ClassVar[str] = "version"

    def __init__(self, *, session: Any = None, **kwargs: Any) -> None:
        """``session``: the boto3 Session the version pruning uses (tests: moto)."""
        super().__init__(**kwargs)
        self._session = session

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        result = super().deploy(ctx=ctx, bundle=bundle)
        self.prune(ctx, result)
        return result

    def shift(self, *, ctx: ProviderContext, traffic: tuple[LiveVersion, ...]) -> DeployResult:
        result = super().shift(ctx=ctx, traffic=traffic)
        self.prune(ctx, result)
        return result

    def prune(self, ctx: ProviderContext, result: DeployResult) -> list[str]:
        """Delete published versions beyond ``aws.keep_versions`` (default 3 with
        SnapStart, else none are deleted), never a live one or one an alias routes to.
        A failure is a warning: the deploy has succeeded. Returns what was deleted."""
        from slml.providers import aws_ops

        cfg = self.cfg(ctx)
        keep = cfg.keep_versions if cfg.keep_versions is not None else (
            KEEP_SNAPSTART_VERSIONS if cfg.snap_start else None)  # fmt: skip
        out = AwsOutputs.model_validate(result.outputs)
        if keep is None or not out.function_name:
            return []
        live = {str(v.ref) for v in result.traffic if v.ref}
        if out.version:
            live.add(out.version)
        try:
            deleted = aws_ops.prune_versions(
                function_name=out.function_name, region=out.region or cfg.region,
                keep_live=live, keep_newest=keep, session=self._session,
            )  # fmt: skip
        except InvokeError as exc:
            ctx.reporter.warn(f"{exc.message} (the deploy itself succeeded)")
            return []
        if deleted:
            ctx.reporter.detail(f"deleted published versions {', '.join(deleted)}: kept the "
                                f"live ones and the newest {keep} (aws.keep_versions)")
        return deleted

    def check_rollout(self, ctx: ProviderContext) -> None:
        if tr.mode(ctx) == "shadow":
            raise tr.refuse(self.name, "deploy --shadow", SHADOW_WHY, SHADOW_INSTEAD)

    def describe_traffic(self, live: tuple[LiveVersion, ...]) -> list[str]:
        return describe_traffic(live)

    def cfg(self, ctx: ProviderContext) -> AwsConfig:
        section: AwsConfig = ctx.config.aws
        return section

    # -- build -------------------------------------------------------------------------
    def build(self, *, ctx: ProviderContext) -> Bundle:
        from slml.bundle.lambda_bundle import LambdaOptions, build_lambda_bundle

        cfg = self.cfg(ctx)
        options = LambdaOptions(
            runtime=cfg.runtime, architecture=cfg.architecture, large_bundle=cfg.large_bundle,
            bytecode=cfg.bytecode, requirements=ctx.config.requirements,
        )  # fmt: skip
        return build_lambda_bundle(
            ctx.config.model, ctx.state.build_dir(self.name), options=options,
            cache_dir=cache_dir(), reporter=ctx.reporter,
        )  # fmt: skip

    # -- program -----------------------------------------------------------------------
    def api_key_path(self, ctx: ProviderContext) -> Path:
        return ctx.state.stage_dir(self.name, ctx.stage) / "api_key"

    def api_key(self, ctx: ProviderContext, *, create: bool) -> str:
        """The endpoint's API key; generated (0600 file) only when ``create``."""
        path = self.api_key_path(ctx)
        if not create and not path.is_file():
            return PLACEHOLDER_KEY
        return read_or_create_secret(path)

    def component_args(self, ctx: ProviderContext, bundle: Bundle, *,
                       api_key: str | None) -> Any:  # fmt: skip
        from slml.bundle.lambda_bundle import HANDLER
        from slml.bundle.lambda_delivery import lambda_outputs
        from slml.capture import capture_env
        from slml.infra.aws_lambda import LambdaModelArgs

        cfg = self.cfg(ctx)
        built = lambda_outputs(bundle)  # the builder's files and delivery decision
        image = built.image_context
        return LambdaModelArgs(
            project=ctx.config.name, stage=ctx.stage, function_zip=str(built.function_zip),
            layer_zip=str(built.layer_zip) if built.layer_zip else None, delivery=built.delivery,
            image_context=str(image) if image else None, runtime=cfg.runtime, handler=HANDLER,
            architecture=cfg.architecture, memory=cfg.memory, timeout=cfg.timeout,
            ephemeral_storage=cfg.ephemeral_storage,
            reserved_concurrency=cfg.reserved_concurrency,
            throttle_burst=cfg.throttle.burst, throttle_rate=cfg.throttle.rate,
            provisioned_concurrency=cfg.provisioned_concurrency, snap_start=cfg.snap_start,
            auth=cfg.auth,
            api_key=api_key, log_retention_days=cfg.log_retention_days,
            artifact_bucket=cfg.artifact_bucket, tags=dict(cfg.tags),
            env={**model_env(ctx, "aws"), **capture_env(ctx.config, default=None)},
        )  # fmt: skip

    def preflight(self, *, ctx: ProviderContext) -> None:
        """Before any build: the Pulumi SDKs are importable, and the CLI is here."""
        require_extra("aws", *SDK_MODULES)
        super().preflight(ctx=ctx)

    def program(
        self, *, ctx: ProviderContext, bundle: Bundle, deploying: bool = False,
        traffic: tuple[LiveVersion, ...] | None = None,
    ) -> Program:  # fmt: skip
        """The inline Pulumi program. A key for ``auth: api_key`` is only generated when
        ``deploying`` (or shifting); a preview shows a placeholder. ``traffic`` is the
        live set to route (a shift); by default the one ``ctx.rollout`` asks for. Raises
        ProviderUnavailable naming ``slml[aws]`` when the Pulumi SDKs are missing, and
        for ``--shadow``."""
        require_extra("aws", *SDK_MODULES)
        cfg = self.cfg(ctx)
        shifting = traffic is not None
        live = traffic if traffic is not None else self.planned_traffic(ctx)
        create_key = deploying or shifting
        key = self.api_key(ctx, create=create_key) if cfg.auth == "api_key" else None
        args = replace(
            self.component_args(ctx, bundle, api_key=key), **alias_routing(live),
            pinned_image=self._recorded_image(ctx) if shifting else None,
        )  # fmt: skip

        def run() -> None:
            import pulumi
            import pulumi_aws as aws

            from slml.infra.aws_lambda import LambdaModel

            provider = aws.Provider("aws", region=cfg.region)
            secret_args = args
            if key is not None:
                secret_args = replace(args, api_key=pulumi.Output.secret(key))
            model = LambdaModel(
                ctx.config.name, secret_args, pulumi.ResourceOptions(providers={"aws": provider})
            )
            pulumi.export("url", model.url)
            pulumi.export("function_name", model.function_name)
            pulumi.export("api_id", model.api.id)
            pulumi.export("log_group", model.log_group.name)
            pulumi.export("region", cfg.region)
            pulumi.export("auth", cfg.auth)
            pulumi.export("version", model.version)
            pulumi.export("alias", model.alias.name)
            export_traffic(ctx, self.name, traffic_output(live, model.version))
            if args.delivery == "image":
                pulumi.export("image_uri", model.function.image_uri)

        return run

    def _recorded_image(self, ctx: ProviderContext) -> str | None:
        return AwsOutputs.of(ctx.state.read_record(ctx.stage, self.name)).image_uri

    def deploy_program(self, *, ctx: ProviderContext, bundle: Bundle) -> Program:
        return self.program(ctx=ctx, bundle=bundle, deploying=True)

    def warnings(self, ctx: ProviderContext) -> list[str]:
        cfg = self.cfg(ctx)
        out = []
        if cfg.auth == "none":
            out.append(
                "aws.auth is none: this endpoint will be PUBLIC: anyone with the URL can call "
                "it (and run up your bill). Use auth: iam (default) or api_key to restrict it."
            )
        if cfg.timeout > HTTP_API_TIMEOUT_MAX:
            out.append(
                f"aws.timeout is {cfg.timeout} s but HTTP API integrations time out at 30 s: "
                "requests through the URL are cut at 30 s"
            )
        return out

    def stack_config(self, ctx: ProviderContext) -> dict[str, str]:
        return {"aws:region": self.cfg(ctx).region}

    # -- operations --------------------------------------------------------------------
    def status(self, *, ctx: ProviderContext, session: Any = None) -> Status:
        from slml.providers import aws_ops

        rec = ctx.state.read_record(ctx.stage, self.name)
        if rec is None:
            return Status(provider=self.name, stage=ctx.stage, state="not-deployed")
        out = AwsOutputs.of(rec)
        details = aws_ops.function_status(
            function_name=out.need("function_name"), api_id=out.api_id,
            region=out.region or self.cfg(ctx).region, session=session,
        )  # fmt: skip
        state: DeploymentState = "running" if details["state"] == "Active" else "unknown"
        return Status(
            provider=self.name, stage=ctx.stage, state=state, url=rec.get("url"),
            version=rec.get("version"), details=details, traffic=self.recorded_traffic(ctx),
        )  # fmt: skip

    def invoke(
        self, *, ctx: ProviderContext, payload: dict[str, Any], transport: Any = None,
        credentials: Any = None,
    ) -> dict[str, Any]:  # fmt: skip
        from slml.providers import aws_ops

        rec = self.record(ctx)
        out = AwsOutputs.of(rec)
        auth = out.auth or self.cfg(ctx).auth
        key = self.api_key(ctx, create=False) if auth == "api_key" else None
        return aws_ops.invoke_http(
            rec["url"], payload, auth=auth, region=out.region or self.cfg(ctx).region,
            api_key=key, credentials=credentials, transport=transport,
        )  # fmt: skip

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False,
        session: Any = None,
    ) -> Iterator[str]:  # fmt: skip
        from slml.providers import aws_ops

        out = AwsOutputs.of(self.record(ctx))
        region = out.region or self.cfg(ctx).region
        yield from aws_ops.tail_logs(
            log_group=out.need("log_group"), region=region, lines=lines, follow=follow,
            session=session, missing_hint="it is created by the deploy; it may have been "
            "deleted outside slml (`slml deploy --provider aws` recreates it)",
        )  # fmt: skip


def alias_routing(live: tuple[LiveVersion, ...]) -> dict[str, Any]:
    """LambdaModelArgs fields for a live set: the alias on the primary's version, the
    canary (if any) as the additional version at its share / 100. Raises
    ProviderUnavailable for a shadow and DeployError for more than two versions."""
    if any(v.role == "shadow" for v in live):
        raise tr.refuse("aws", "route to a shadow version", SHADOW_WHY, SHADOW_INSTEAD)
    tr.check_shift(live, max_answering=2)
    primary = next(v for v in live if v.role == "primary")
    canary = next((v for v in live if v.role != "primary"), None)
    if canary is None:
        return {"alias_version": primary.ref or tr.NEW}
    return {"alias_version": primary.ref or tr.NEW, "canary_version": canary.ref or tr.NEW,
            "canary_weight": round(canary.percent / 100.0, 4)}  # fmt: skip


def describe_traffic(live: tuple[LiveVersion, ...]) -> list[str]:
    """The alias routing in words, for the plan's notes."""
    if len(live) == 1:
        return [f"traffic: alias live -> version {_name(live[0])} (100%)"]
    primary = next(v for v in live if v.role == "primary")
    canary = next(v for v in live if v.role != "primary")
    return [
        f"traffic: alias live -> version {_name(primary)} ({primary.percent:g}%), "
        f"additional_version_weights {{{_name(canary)}: {canary.percent / 100:g}}} "
        f"(v{canary.version}, {canary.percent:g}% canary)"
    ]


def _name(live: LiveVersion) -> str:
    return "(published by this deploy)" if live.ref in (None, tr.NEW) else str(live.ref)
