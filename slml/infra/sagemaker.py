"""``slml:aws:SageMakerModel``: a model served by a SageMaker endpoint from slml's image.

Children: an ECR repository and the image pushed to it (only when building), an S3
bucket holding ``model.tar.gz`` (SageMaker unpacks it to /opt/ml/model), an execution
role trusting sagemaker.amazonaws.com with only: pull from that repository, read that
one object, write the endpoint's CloudWatch logs and metrics (and put data-capture
objects under the capture prefix when enabled); then ``sagemaker.Model``,
``sagemaker.EndpointConfiguration`` (serverless by default, instance-backed when
``instance_type`` is set, data capture only there) and ``sagemaker.Endpoint``.

Traffic (``variants``): one ``sagemaker.Model`` per live version (``<name>-model-v<N>``)
and, in the one EndpointConfiguration, a production variant ``v<N>`` per answering
version with ``initial_variant_weight`` = its share (a canary), or one production and
one ``shadow_production_variants`` entry (a shadow: SageMaker copies every call to it
and discards its answer). Older versions keep the image and model data URL they were
deployed with; model objects are retained when replaced so an older variant's data
stays readable, and the role may read every live version's object. Instance endpoints
only: a serverless endpoint has one variant and no shadow (``check_variant``).
Without ``variants``, one ``AllTraffic`` variant serves this deploy's model.

Outputs: ``endpoint_name`` and ``url``, the runtime invocations URL. That URL needs
SigV4-signed requests (service ``sagemaker``); ``slml invoke`` calls
``sagemaker-runtime.invoke_endpoint`` with boto3 instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from slml.errors import ConfigError
from slml.infra.image import ImageSource, container_image

TYPE = "slml:aws:SageMakerModel"
MODEL_DIR = "/opt/ml/model"
VARIANT = "AllTraffic"
SERVERLESS_DOCS = "docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html"
SHADOW_DOCS = "docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html"
_ECR = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")
_NAME = re.compile(r"[^a-zA-Z0-9-]+")


@dataclass(frozen=True)
class Variant:
    """One live version on the endpoint. ``weight``: its share of answered calls (0-1),
    or for a shadow the share of calls copied to it. ``image`` / ``model_data_url``:
    what an older version was deployed with; None for this deploy's own."""

    version: int
    weight: float
    shadow: bool = False
    image: str | None = None
    model_data_url: str | None = None

    @property
    def name(self) -> str:
        return f"v{self.version}"


@dataclass(frozen=True)
class SageMakerSpec:
    """Everything the component needs, as plain data (see ``from_config``)."""

    endpoint: str
    region: str
    image: ImageSource
    model_tar: Path
    model_sha256: str
    memory: int = 2048
    max_concurrency: int = 5
    instance_type: str | None = None
    instance_count: int = 1
    capture: bool = False
    capture_s3_uri: str | None = None
    sampling_percentage: int = 100
    capture_inputs_only: bool = False  # capture mode Input alone (``capture.inputs_only``)
    tags: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    variants: tuple[Variant, ...] = ()  # empty: one AllTraffic variant, this deploy's model
    pinned_image: str | None = None  # a shift: this deploy's image is this recorded URI

    @classmethod
    def from_config(
        cls, cfg: Any, *, name: str, stage: str, image: ImageSource, model_tar: Path, sha: str
    ) -> SageMakerSpec:
        """From the ``sagemaker:`` section of slml.yaml (``SageMakerConfig``)."""
        return cls(
            endpoint=endpoint_name(name, stage),
            region=cfg.region,
            image=image,
            model_tar=model_tar,
            model_sha256=sha,
            memory=cfg.memory,
            max_concurrency=cfg.max_concurrency,
            instance_type=cfg.instance_type,
            instance_count=cfg.instance_count,
            capture=cfg.data_capture.enabled,
            capture_s3_uri=cfg.data_capture.s3_uri,
            sampling_percentage=cfg.data_capture.sampling_percentage,
            tags=dict(cfg.tags),
            env=dict(cfg.env),
        )

    @property
    def serverless(self) -> bool:
        return self.instance_type is None


def with_project_capture(spec: SageMakerSpec, capture: Any) -> SageMakerSpec:
    """``capture:`` of slml.yaml (a CaptureConfig, or None) as SageMaker's own data
    capture, the one mechanism an endpoint has: an ``s3://`` sink on an instance-backed
    endpoint becomes ``data_capture_config`` (destination the sink, sampling
    ``sample`` x 100 rounded, Input only with ``inputs_only``); an explicit
    ``sagemaker.data_capture`` wins. Records are then in SageMaker's capture format
    (not slml's JSONL), under ``<sink>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/``.
    Raises ConfigError where it cannot hold: a serverless endpoint (SageMaker has no
    data capture there) or a sink that is not on S3."""
    if capture is None or not capture.sink or spec.capture:
        return spec  # no sink: a cloud target captures nothing (slml.capture.capture_env)
    if spec.serverless:
        raise ConfigError(
            "capture: a serverless SageMaker endpoint has no data capture, and slml's own "
            "capture does not run behind SageMaker",
            hint="set sagemaker.instance_type (e.g. ml.m5.large) for native data capture "
            "to an s3:// sink, or remove capture: for this target",
        )
    sink = str(capture.sink)
    if not sink.startswith("s3://"):
        raise ConfigError(
            f"capture.sink: SageMaker's data capture writes to S3 only, not {sink}",
            hint="set capture.sink to s3://BUCKET/PREFIX for --provider sagemaker",
        )
    from dataclasses import replace

    return replace(spec, capture=True, capture_s3_uri=sink.rstrip("/"),
                   sampling_percentage=round(capture.sample * 100),
                   capture_inputs_only=capture.inputs_only)  # fmt: skip


def endpoint_name(name: str, stage: str) -> str:
    """``<name>-<stage>``: letters, digits and dashes, at most 63 characters."""
    return _NAME.sub("-", f"{name}-{stage}").strip("-")[:63].rstrip("-")


def invocations_url(region: str, endpoint: str) -> str:
    """The runtime URL; callers must sign with SigV4 (service ``sagemaker``)."""
    return f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint}/invocations"


def check_variant(spec: SageMakerSpec) -> None:
    """SageMaker's bounds, checked before any call. Raises ConfigError naming the key."""
    if spec.serverless:
        if spec.memory not in range(1024, 6145, 1024):
            raise ConfigError(
                f"sagemaker.memory: {spec.memory} is not one of 1024, 2048, ... 6144 MB"
            )
        if not 1 <= spec.max_concurrency <= 200:
            raise ConfigError(f"sagemaker.max_concurrency: {spec.max_concurrency} is not 1-200")
        if spec.capture:
            raise ConfigError(
                "sagemaker.data_capture needs an instance-backed endpoint",
                hint="set sagemaker.instance_type (e.g. ml.m5.large) or disable data capture",
            )
        if len(spec.variants) > 1:
            raise ConfigError(
                "a serverless SageMaker endpoint serves one production variant and no shadow "
                f"variant ({SERVERLESS_DOCS}, {SHADOW_DOCS}), so traffic cannot be split",
                hint="set sagemaker.instance_type (e.g. ml.m5.large) for an instance endpoint",
            )
    elif spec.instance_count < 1:
        raise ConfigError(f"sagemaker.instance_count: {spec.instance_count} is below 1")
    shadows = [v for v in spec.variants if v.shadow]
    if shadows and (len(shadows) > 1 or len(spec.variants) != 2):
        raise ConfigError(
            "a SageMaker endpoint with a shadow variant serves exactly one production and "
            "one shadow variant",
            hint="`slml promote` or `slml rollback` the canary first",
        )


def trust_policy() -> dict[str, Any]:
    """Only SageMaker may assume the execution role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def ecr_repository_arn(image_uri: str) -> str:
    """The ECR repository ARN of an image URI. Raises ConfigError for a non-ECR image
    (SageMaker pulls images from ECR only)."""
    match = _ECR.match(image_uri)
    if not match:
        raise ConfigError(
            f"sagemaker.image_uri: {image_uri!r} is not an ECR image "
            "(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)",
            hint="push the image to ECR, or leave image_uri out to let slml build and push it",
        )
    account, region, repo = match.groups()
    return f"arn:aws:ecr:{region}:{account}:repository/{repo}"


def s3_arn(uri: str) -> str:
    """``s3://bucket/prefix`` → ``arn:aws:s3:::bucket/prefix``."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ConfigError(f"sagemaker.data_capture.s3_uri: {uri!r} is not an s3://bucket/prefix")
    return "arn:aws:s3:::" + uri.removeprefix("s3://").rstrip("/")


def execution_role_policy(
    *,
    repository_arn: str,
    model_object_arn: str | list[str],
    region: str,
    endpoint: str,
    capture_prefix_arn: str | None = None,
) -> dict[str, Any]:
    """The execution role's inline policy: nothing beyond what hosting this endpoint
    needs. ``ecr:GetAuthorizationToken`` and ``cloudwatch:PutMetricData`` do not support
    resource ARNs (AWS requires ``*``); the latter is limited to SageMaker's namespace.
    Log groups are named by the endpoint; the account is the role's own."""
    logs = f"arn:aws:logs:{region}:*:log-group:/aws/sagemaker/Endpoints/{endpoint}"
    statements: list[dict[str, Any]] = [
        {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
         "Resource": "*"},
        {"Sid": "EcrPull", "Effect": "Allow", "Resource": repository_arn, "Action": [
            "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer"]},
        {"Sid": "ModelData", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": model_object_arn},  # one per live version
        {"Sid": "Logs", "Effect": "Allow", "Resource": [logs, f"{logs}:*"], "Action": [
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
            "logs:PutLogEvents"]},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*",
         "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}},
    ]  # fmt: skip
    if capture_prefix_arn:
        statements.append(
            {"Sid": "DataCapture", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"{capture_prefix_arn}/*"}
        )  # fmt: skip
    return {"Version": "2012-10-17", "Statement": statements}


def model_key(sha256: str) -> str:
    """The object key of model.tar.gz: by content, so a new model is a new object."""
    return f"models/{sha256[:16]}/model.tar.gz"


class SageMakerModel(pulumi.ComponentResource):
    """The SageMaker endpoint for one model and stage; see the module docstring."""

    endpoint_name: pulumi.Output[str]
    url: pulumi.Output[str]
    image: pulumi.Output[str]
    model_data_url: pulumi.Output[str]

    def __init__(
        self, name: str, spec: SageMakerSpec, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        check_variant(spec)
        import pulumi_aws as aws

        child = pulumi.ResourceOptions(parent=self)
        tags = {**spec.tags, "slml:endpoint": spec.endpoint}
        image, repository_arn = self._image(name, spec, aws, child)
        bucket = aws.s3.Bucket(f"{name}-artifacts", force_destroy=True, tags=tags, opts=child)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-artifacts-private", bucket=bucket.id, block_public_acls=True,
            block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
            opts=child,
        )  # fmt: skip
        key = model_key(spec.model_sha256)
        obj = aws.s3.BucketObjectv2(
            f"{name}-model-data", bucket=bucket.id, key=key,
            source=pulumi.FileAsset(str(spec.model_tar)), tags=tags,
            # an older live version's variant still reads its object: keep it when replaced
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )  # fmt: skip
        capture_uri = _capture_uri(spec, bucket.bucket)
        self.model_data_url = pulumi.Output.concat("s3://", obj.bucket, "/", obj.key)
        keys = [key, *(_key_of(v.model_data_url) for v in spec.variants if v.model_data_url)]
        role = self._role(name, spec, aws, child, repository_arn, bucket, keys, capture_uri, tags)
        variants = spec.variants or (Variant(version=0, weight=1.0),)
        models = {
            v.version: aws.sagemaker.Model(
                f"{name}-model" if not spec.variants else f"{name}-model-{v.name}",
                execution_role_arn=role.arn,
                primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                    image=v.image or image,
                    model_data_url=v.model_data_url or self.model_data_url,
                    environment={**spec.env, "SLML_MODEL_DIR": MODEL_DIR},
                ),
                tags=tags,
                opts=child,
            )
            for v in variants
        }
        production = [v for v in variants if not v.shadow]
        shadow = [v for v in variants if v.shadow]
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                _variant(spec, aws, models[v.version].name, v, named=bool(spec.variants))
                for v in production
            ],
            shadow_production_variants=[
                _variant(spec, aws, models[v.version].name, v, named=True, shadow=True)
                for v in shadow
            ] or None,
            data_capture_config=_capture(spec, aws, capture_uri),
            tags=tags,
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=spec.endpoint,
            endpoint_config_name=config.name,
            tags=tags,
            opts=child,
        )
        self.image = image
        self.endpoint_name = endpoint.name
        self.url = endpoint.name.apply(lambda n: invocations_url(spec.region, n))
        self.register_outputs(
            {"endpoint_name": self.endpoint_name, "url": self.url, "image": self.image,
             "model_data_url": self.model_data_url}
        )  # fmt: skip

    def _image(self, name: str, spec: SageMakerSpec, aws: Any, child: pulumi.ResourceOptions):
        if spec.image.prebuilt:
            uri = str(spec.image.image_uri)
            return pulumi.Output.from_input(uri), pulumi.Output.from_input(ecr_repository_arn(uri))
        repo = aws.ecr.Repository(
            f"{name}-images",
            name=spec.endpoint.lower(),
            force_delete=True,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            tags={**spec.tags, "slml:endpoint": spec.endpoint},
            opts=child,
        )
        if spec.pinned_image:  # a shift: the repository stays, nothing is built
            return pulumi.Output.from_input(spec.pinned_image), repo.arn
        token = aws.ecr.get_authorization_token_output(
            registry_id=repo.registry_id, opts=pulumi.InvokeOptions(parent=self)
        )
        image = container_image(
            f"{name}-image",
            source=spec.image,
            repository_url=repo.repository_url,
            username=token.user_name,
            password=token.password,
            parent=self,
        )
        return image, repo.arn

    def _role(self, name, spec, aws, child, repository_arn, bucket, keys, capture_uri, tags):
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(trust_policy()),
            description=f"SageMaker execution role of slml endpoint {spec.endpoint}",
            tags=tags,
            opts=child,
        )
        policy = pulumi.Output.all(repository_arn, bucket.arn, capture_uri).apply(
            lambda a: json.dumps(
                execution_role_policy(
                    repository_arn=a[0],
                    model_object_arn=[f"{a[1]}/{k}" for k in keys] if len(keys) > 1
                    else f"{a[1]}/{keys[0]}",
                    region=spec.region,
                    endpoint=spec.endpoint,
                    capture_prefix_arn=s3_arn(a[2]) if a[2] else None,
                )
            )
        )
        aws.iam.RolePolicy(f"{name}-role-policy", role=role.id, policy=policy, opts=child)
        return role


def _capture_uri(spec: SageMakerSpec, bucket_name: pulumi.Output[str]) -> pulumi.Input[str] | None:
    if not spec.capture:
        return None
    if spec.capture_s3_uri:
        return spec.capture_s3_uri
    return pulumi.Output.concat("s3://", bucket_name, "/data-capture")


def _variant(
    spec: SageMakerSpec, aws: Any, model_name: pulumi.Output[str], variant: Variant, *,
    named: bool, shadow: bool = False,
) -> Any:  # fmt: skip
    sm = aws.sagemaker
    name = variant.name if named else VARIANT
    if spec.serverless:
        return sm.EndpointConfigurationProductionVariantArgs(
            variant_name=name,
            model_name=model_name,
            serverless_config=sm.EndpointConfigurationProductionVariantServerlessConfigArgs(
                memory_size_in_mb=spec.memory, max_concurrency=spec.max_concurrency
            ),
        )
    args = sm.EndpointConfigurationShadowProductionVariantArgs if shadow else (
        sm.EndpointConfigurationProductionVariantArgs)  # fmt: skip
    return args(
        variant_name=name,
        model_name=model_name,
        instance_type=spec.instance_type,
        initial_instance_count=spec.instance_count,
        initial_variant_weight=variant.weight,
    )


def _key_of(model_data_url: str) -> str:
    """``s3://bucket/models/x/model.tar.gz`` → ``models/x/model.tar.gz``."""
    return model_data_url.removeprefix("s3://").split("/", 1)[1]


def _capture(spec: SageMakerSpec, aws: Any, uri: pulumi.Input[str] | None) -> Any:
    if uri is None:
        return None
    sm = aws.sagemaker
    return sm.EndpointConfigurationDataCaptureConfigArgs(
        enable_capture=True,
        destination_s3_uri=uri,
        initial_sampling_percentage=spec.sampling_percentage,
        capture_options=[
            sm.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode=mode)
            for mode in (("Input",) if spec.capture_inputs_only else ("Input", "Output"))
        ],
        capture_content_type_header=(
            sm.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                json_content_types=["application/json"]
            )
        ),
    )
