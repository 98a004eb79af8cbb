"""``slml:aws:LambdaModel``: a model on AWS Lambda behind an API Gateway HTTP API.

Children (all ``parent=self``): an IAM role trusting lambda.amazonaws.com with only the
basic execution policy (plus s3:GetObject on the uploaded zips when they go through
S3), a log group ``/aws/lambda/<function>`` with a retention period, the dependency
layer, the function (published), an optional ``live`` alias with provisioned
concurrency, an HTTP API with an AWS_PROXY integration at payload format 2.0, its
``$default`` route (AWS_IAM unless ``auth`` is ``api_key`` or ``none``), a ``$default``
stage with auto-deploy, and a Permission scoped to this API's execution ARN.

Outputs: ``url``, ``function_name``, ``api_id``, ``log_group``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from slml.infra import aws_policies as pol

TYPE = "slml:aws:LambdaModel"


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
    auth: Literal["iam", "api_key", "none"] = "iam"
    api_key: Any = None  # pulumi.Input[str], secret; only with auth: api_key
    log_retention_days: int = 14
    artifact_bucket: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


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
        self.role = self._role(code)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=self.names["log_group"],
            retention_in_days=args.log_retention_days,
            tags=self.tags,
            opts=self._child,
        )
        self.function = self._function(code)
        target = self._alias()
        self._api(target)
        self.url = self.api.api_endpoint
        self.function_name = self.function.name
        self.register_outputs(
            {
                "url": self.url,
                "function_name": self.function_name,
                "api_id": self.api.id,
                "log_group": self.log_group.name,
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
        out: dict[str, Any] = {"bucket": bucket, "keys": []}
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
            out["keys"].append(key)
        return out

    def _image(self) -> pulumi.Output[str]:
        import pulumi_docker_build as docker_build

        repo = aws.ecr.Repository(
            f"{self._name}-repo", force_delete=True, tags=self.tags, opts=self._child
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
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

    # -- IAM -------------------------------------------------------------------------
    def _role(self, code: dict[str, Any]) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{self._name}-role",
            name=self.names["role"],
            assume_role_policy=pol.lambda_trust_policy(),
            tags=self.tags,
            opts=self._child,
        )
        self.basic_policy = aws.iam.RolePolicyAttachment(
            f"{self._name}-basic-execution",
            role=role.name,
            policy_arn=aws.iam.ManagedPolicy.AWS_LAMBDA_BASIC_EXECUTION_ROLE,
            opts=self._child,
        )
        if "bucket" in code:
            keys = code["keys"]
            aws.iam.RolePolicy(
                f"{self._name}-artifact-read",
                role=role.id,
                policy=pulumi.Output.from_input(code["bucket"]).apply(
                    lambda bucket: pol.s3_read_policy(bucket, keys)
                ),
                opts=self._child,
            )
        return role

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
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.log_group, self.basic_policy]
            ),
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

    def _alias(self) -> Any:
        """The integration target: the function, or a ``live`` alias with provisioned
        concurrency when configured."""
        if not self._args.provisioned_concurrency:
            return None
        alias = aws.lambda_.Alias(
            f"{self._name}-live",
            name="live",
            function_name=self.function.name,
            function_version=self.function.version,
            opts=self._child,
        )
        aws.lambda_.ProvisionedConcurrencyConfig(
            f"{self._name}-provisioned",
            function_name=self.function.name,
            qualifier=alias.name,
            provisioned_concurrent_executions=self._args.provisioned_concurrency,
            opts=self._child,
        )
        return alias

    # -- API Gateway -----------------------------------------------------------------
    def _api(self, alias: Any) -> None:
        args = self._args
        self.api = aws.apigatewayv2.Api(
            f"{self._name}-api",
            name=self.names["api"],
            protocol_type="HTTP",
            tags=self.tags,
            opts=self._child,
        )
        invoke_arn = alias.invoke_arn if alias is not None else self.function.invoke_arn
        self.integration = aws.apigatewayv2.Integration(
            f"{self._name}-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=invoke_arn,
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
            opts=self._child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{self._name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            tags=self.tags,
            opts=self._child,
        )
        self.permission = aws.lambda_.Permission(
            f"{self._name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(pol.api_source_arn),
            qualifier=alias.name if alias is not None else None,
            opts=self._child,
        )
