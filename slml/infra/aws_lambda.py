"""``slml:aws:LambdaModel``: a model on AWS Lambda behind an API Gateway HTTP API.

Children (all ``parent=self``): an IAM role trusting lambda.amazonaws.com whose only
grant is writing to its own log group (``/aws/lambda/<function>``, created here with a
retention period; no wildcard log permissions, no S3 grant: Lambda fetches code zips
with the deployer's credentials), the dependency layer, the function (published: every
code or configuration change is a new numbered version, with optional reserved
concurrency), a ``live`` alias (with provisioned concurrency when configured), an
HTTP API with an AWS_PROXY integration at payload format 2.0, its
``$default`` route, a ``$default`` stage with auto-deploy and throttling (burst and
rate: over them the gateway answers 429 before any function runs), and a Permission
scoped to this API's execution ARN.

Auth on the route: AWS_IAM for ``iam``; for ``api_key`` a Lambda REQUEST authorizer
(``slml.infra.lambda_authorizer``, its own 128 MB function, role and log group) with
identity source ``$request.header.x-api-key`` and cached answers, so a call without
the key is refused by the gateway and a wrong key never invokes the model's function;
NONE only for ``none``.

Traffic: the API integration and its Permission name the ``live`` alias (its qualified
ARN), never the function, so traffic follows the alias. The alias points at
``alias_version`` and, for a canary, sends ``canary_weight`` (0-1) of calls to
``canary_version`` through ``routing_config.additional_version_weights``: Lambda's
weight is the share of the ADDITIONAL version, two versions per alias at most.
``NEW`` (``$new``) stands for the version this update publishes.

Outputs: ``url``, ``function_name``, ``api_id``, ``log_group``, ``version`` (the
function's latest published version), ``alias``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from slml.infra import aws_policies as pol
from slml.infra import lambda_authorizer
from slml.providers.traffic import NEW

TYPE = "slml:aws:LambdaModel"
AUTHORIZER_MEMORY_MB = 128
AUTHORIZER_TIMEOUT_S = 3


@dataclass(frozen=True)
class LambdaModelArgs:
    """Everything the component needs; built by the provider from slml.yaml and the bundle."""

    project: str
    stage: str
    function_zip: str
    layer_zip: str | None = None
    delivery: Literal["direct", "s3", "image"] = "direct"
    image_context: str | None = None
    runtime: str = "python3.12"
    handler: str = "slml_handler.handler"
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    memory: int = 1024
    timeout: int = 30
    ephemeral_storage: int = 512
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    snap_start: bool = False  # zip functions on python3.12+: snapshots of published versions
    throttle_burst: int = 100
    throttle_rate: float = 50.0
    auth: Literal["iam", "api_key", "none"] = "iam"
    api_key: Any = None  # pulumi.Input[str], secret; only with auth: api_key
    log_retention_days: int = 14
    artifact_bucket: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    alias_version: str = NEW  # the version the alias points at
    canary_version: str | None = None  # the alias's additional version, if any
    canary_weight: float = 0.0  # its share, 0-1 (Lambda's weight of the additional version)
    pinned_image: str | None = None  # delivery image: use this URI instead of building


class LambdaModel(pulumi.ComponentResource):
    """The whole deployment of one model on Lambda; see the module docstring."""

    url: pulumi.Output[str]
    function_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LambdaModelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        self.names = pol.resource_names(args.project, args.stage)
        self.tags = {"slml:project": args.project, "slml:stage": args.stage, **args.tags}
        code = self._code()
        self.role, self.log_group, self.log_policy = self._role_and_logs(
            name, self.names["role"], self.names["log_group"]
        )
        if grant := pol.capture_write_policy(args.env.get("SLML_CAPTURE")):  # slml/capture
            aws.iam.RolePolicy(f"{name}-capture-write", role=self.role.id, policy=grant,
                               opts=self._child)  # fmt: skip
        self.function = self._function(code)
        target = self._alias()
        self._api(target)
        self.url = self.api.api_endpoint
        self.function_name = self.function.name
        self.version = self.function.version
        self.register_outputs(
            {
                "url": self.url,
                "function_name": self.function_name,
                "api_id": self.api.id,
                "log_group": self.log_group.name,
                "version": self.version,
                "alias": self.alias.name,
            }
        )

    # -- code: zip archives, S3 objects or an image ----------------------------------
    def _code(self) -> dict[str, Any]:
        args = self._args
        if args.delivery == "image":
            return {"image_uri": self._image()}
        if args.delivery == "direct":
            layer = {"code": pulumi.FileArchive(args.layer_zip)} if args.layer_zip else None
            return {"function": {"code": pulumi.FileArchive(args.function_zip)}, "layer": layer}
        bucket = (
            args.artifact_bucket
            or aws.s3.Bucket(
                f"{self._name}-artifacts", force_destroy=True, tags=self.tags, opts=self._child
            ).bucket
        )
        out: dict[str, Any] = {"bucket": bucket}
        for part, path in (("function", args.function_zip), ("layer", args.layer_zip)):
            if path is None:
                out[part] = None
                continue
            key = f"{args.project}/{args.stage}/{part}.zip"
            obj = aws.s3.BucketObjectv2(
                f"{self._name}-{part}-zip", bucket=bucket, key=key,
                source=pulumi.FileAsset(path), opts=self._child,
            )  # fmt: skip
            out[part] = {"s3_bucket": obj.bucket, "s3_key": obj.key, "source_code_hash": obj.etag}
        return out

    def _image(self) -> pulumi.Output[str]:
        import pulumi_docker_build as docker_build

        repo = aws.ecr.Repository(
            f"{self._name}-repo", force_delete=True, tags=self.tags, opts=self._child
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
        if self._args.pinned_image:
            return pulumi.Output.from_input(self._args.pinned_image)
        platform = "linux/arm64" if self._args.architecture == "arm64" else "linux/amd64"
        image = docker_build.Image(
            f"{self._name}-image",
            context=docker_build.BuildContextArgs(location=self._args.image_context),
            platforms=[platform],
            push=True,
            tags=[repo.repository_url.apply(lambda url: f"{url}:latest")],
            registries=[
                docker_build.RegistryArgs(
                    address=repo.repository_url, username=token.user_name, password=token.password
                )
            ],
            opts=self._child,
        )
        return pulumi.Output.all(repo.repository_url, image.digest).apply(
            lambda parts: f"{parts[0]}@{parts[1]}"
        )

    # -- IAM and logs ------------------------------------------------------------------
    def _role_and_logs(
        self, prefix: str, role_name: str, log_group_name: str
    ) -> tuple[aws.iam.Role, aws.cloudwatch.LogGroup, aws.iam.RolePolicy]:
        """A function's role, its log group, and the role's one grant: writing there."""
        role = aws.iam.Role(
            f"{prefix}-role",
            name=role_name,
            assume_role_policy=pol.lambda_trust_policy(),
            tags=self.tags,
            opts=self._child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{prefix}-logs",
            name=log_group_name,
            retention_in_days=self._args.log_retention_days,
            tags=self.tags,
            opts=self._child,
        )
        policy = aws.iam.RolePolicy(
            f"{prefix}-log-write",
            role=role.id,
            policy=log_group.arn.apply(pol.log_write_policy),
            opts=self._child,
        )
        return role, log_group, policy

    # -- the function ----------------------------------------------------------------
    def _function(self, code: dict[str, Any]) -> aws.lambda_.Function:
        args = self._args
        env = pol.environment(args.env, api_key=args.api_key if args.auth == "api_key" else None)
        kwargs: dict[str, Any] = {}
        if "image_uri" in code:
            kwargs = {"package_type": "Image", "image_uri": code["image_uri"]}
        else:
            kwargs = {**code["function"], "runtime": args.runtime, "handler": args.handler}
            if code.get("layer"):
                kwargs["layers"] = [self._layer(code["layer"]).arn]
            if args.snap_start and args.runtime >= "python3.12":  # init (model load) snapshotted
                kwargs["snap_start"] = aws.lambda_.FunctionSnapStartArgs(
                    apply_on="PublishedVersions"
                )
        return aws.lambda_.Function(
            f"{self._name}-function",
            name=self.names["function"],
            role=self.role.arn,
            architectures=[args.architecture],
            memory_size=args.memory,
            timeout=args.timeout,
            ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(size=args.ephemeral_storage),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=env),
            publish=True,
            reserved_concurrent_executions=(
                args.reserved_concurrency if args.reserved_concurrency is not None else -1
            ),
            tags=self.tags,
            **kwargs,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.log_policy]),
        )

    def _layer(self, code: dict[str, Any]) -> aws.lambda_.LayerVersion:
        return aws.lambda_.LayerVersion(
            f"{self._name}-deps",
            layer_name=self.names["layer"],
            compatible_runtimes=[self._args.runtime],
            compatible_architectures=[self._args.architecture],
            **code,
            opts=self._child,
        )

    def _published(self, version: str) -> pulumi.Input[str]:
        return self.function.version if version == NEW else version

    def _alias(self) -> aws.lambda_.Alias:
        """The integration target: the ``live`` alias on ``alias_version``, with the
        canary's weight when there is one, and provisioned concurrency when configured."""
        args = self._args
        routing = None
        if args.canary_version is not None:
            check_weight(args.canary_weight)
            canary = self._published(args.canary_version)
            routing = aws.lambda_.AliasRoutingConfigArgs(
                additional_version_weights=pulumi.Output.from_input(canary).apply(
                    lambda v: {v: args.canary_weight}
                )
            )
        self.alias = aws.lambda_.Alias(
            f"{self._name}-live",
            name="live",
            function_name=self.function.name,
            function_version=self._published(args.alias_version),
            routing_config=routing,
            opts=self._child,
        )
        if args.provisioned_concurrency:
            aws.lambda_.ProvisionedConcurrencyConfig(
                f"{self._name}-provisioned",
                function_name=self.function.name,
                qualifier=self.alias.name,
                provisioned_concurrent_executions=args.provisioned_concurrency,
                opts=self._child,
            )
        return self.alias

    # -- API Gateway -----------------------------------------------------------------
    def _api(self, alias: aws.lambda_.Alias) -> None:
        args = self._args
        self.api = aws.apigatewayv2.Api(
            f"{self._name}-api",
            name=self.names["api"],
            protocol_type="HTTP",
            tags=self.tags,
            opts=self._child,
        )
        self.integration = aws.apigatewayv2.Integration(
            f"{self._name}-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=alias.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=pol.integration_timeout_ms(args.timeout),
            opts=self._child,
        )
        self.route = aws.apigatewayv2.Route(
            f"{self._name}-route",
            api_id=self.api.id,
            route_key="$default",
            target=self.integration.id.apply(lambda i: f"integrations/{i}"),
            authorization_type=pol.route_authorization(args.auth),
            authorizer_id=self._authorizer().id if args.auth == "api_key" else None,
            opts=self._child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{self._name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=args.throttle_burst,
                throttling_rate_limit=args.throttle_rate,
            ),
            tags=self.tags,
            opts=self._child,
        )
        self.permission = aws.lambda_.Permission(
            f"{self._name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(pol.api_source_arn),
            qualifier=alias.name,
            opts=self._child,
        )

    # -- the API key authorizer ----------------------------------------------------------
    def _authorizer(self) -> aws.apigatewayv2.Authorizer:
        """A REQUEST authorizer in its own small function that compares ``x-api-key``
        with the key; API Gateway refuses calls without the header by itself."""
        args, prefix = self._args, f"{self._name}-authorizer"
        role, log_group, log_policy = self._role_and_logs(
            prefix, self.names["authorizer_role"], self.names["authorizer_log_group"]
        )
        source = Path(lambda_authorizer.__file__)
        function = aws.lambda_.Function(
            f"{prefix}-function",
            name=self.names["authorizer"],
            role=role.arn,
            runtime=args.runtime,
            handler="slml_authorizer.handler",
            code=pulumi.AssetArchive({"slml_authorizer.py": pulumi.FileAsset(str(source))}),
            architectures=[args.architecture],
            memory_size=AUTHORIZER_MEMORY_MB,
            timeout=AUTHORIZER_TIMEOUT_S,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"SLML_API_KEY": args.api_key}
            ),
            tags=self.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, log_policy]),
        )
        self.authorizer = aws.apigatewayv2.Authorizer(
            prefix,
            api_id=self.api.id,
            name=self.names["authorizer"],
            authorizer_type="REQUEST",
            authorizer_uri=function.invoke_arn,
            authorizer_payload_format_version="2.0",
            enable_simple_responses=True,
            identity_sources=[pol.API_KEY_IDENTITY_SOURCE],
            authorizer_result_ttl_in_seconds=pol.AUTHORIZER_CACHE_SECONDS,
            opts=self._child,
        )
        aws.lambda_.Permission(
            f"{prefix}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.all(self.api.execution_arn, self.authorizer.id).apply(
                lambda parts: pol.authorizer_source_arn(parts[0], parts[1])
            ),
            opts=self._child,
        )
        return self.authorizer


def check_weight(weight: float) -> None:
    """Lambda takes an additional version's weight in [0, 1); 0 < w < 1 for a canary."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"a Lambda alias canary weight must be between 0 and 1, not {weight}")
