"""``--provider sagemaker``: a SageMaker endpoint from slml's container image.

Build writes the container context and ``model.tar.gz``; plan/deploy/destroy come from
``PulumiProvider`` running ``SageMakerModel``. ``invoke`` calls
``sagemaker-runtime.invoke_endpoint``, ``status`` ``sagemaker.describe_endpoint`` and
``logs`` reads the endpoint's CloudWatch Logs group ``/aws/sagemaker/Endpoints/<name>``
(``aws_ops.tail_logs``), all with boto3 (an injectable Session; tests use moto).
``upload_model_tar`` puts a ``model.tar.gz`` into S3 (for a model-only update outside
Pulumi, or a prebuilt image).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from slml.bundle.served_env import with_model_env
from slml.config.sections import SageMakerConfig
from slml.errors import InvokeError
from slml.providers import aws_ops, container_ops
from slml.providers.base import Bundle, ProviderContext, Status
from slml.providers.pulumi_base import PulumiProvider

_STATES = {"InService": "running", "Failed": "down", "OutOfService": "down"}
LOGS_MISSING_HINT = (
    "SageMaker creates it when the endpoint's container first starts; "
    "`slml status --provider sagemaker` shows whether the endpoint is InService"
)


def log_group(endpoint: str) -> str:
    """The CloudWatch Logs group SageMaker writes an endpoint's container output to."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def _session(region: str, session: Any) -> Any:
    if session is not None:
        return session
    import boto3

    return boto3.Session(region_name=region)


def invoke_endpoint(
    endpoint: str, payload: dict[str, Any], *, region: str, session: Any = None
) -> dict[str, Any]:
    """Call the endpoint with a JSON body (signed by boto3 with the caller's
    credentials); return the parsed JSON answer. Raises InvokeError."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = _session(region, session).client("sagemaker-runtime", region_name=region)
    try:
        answer = client.invoke_endpoint(
            EndpointName=endpoint,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(payload).encode(),
        )
    except (ClientError, BotoCoreError) as exc:
        raise InvokeError(
            f"SageMaker endpoint {endpoint!r} in {region} failed: {exc}",
            hint="`slml status --provider sagemaker` shows whether it is InService",
        ) from None
    body = answer["Body"].read()
    try:
        return json.loads(body)
    except ValueError:
        raise InvokeError(f"endpoint {endpoint!r} answered non-JSON: {body[:200]!r}") from None


def describe_endpoint(endpoint: str, *, region: str, session: Any = None) -> dict[str, Any]:
    """Status, variants and times of the endpoint. Raises InvokeError when it is gone."""
    from botocore.exceptions import ClientError

    client = _session(region, session).client("sagemaker", region_name=region)
    try:
        desc = client.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        raise InvokeError(
            f"SageMaker has no endpoint {endpoint!r} in {region}: "
            f"{exc.response['Error'].get('Message', exc)}",
            hint="it may have been deleted outside slml; `slml deploy --provider sagemaker`",
        ) from None
    return {
        "endpoint_status": desc["EndpointStatus"],
        "endpoint_config": desc.get("EndpointConfigName"),
        "variants": [
            {
                "name": v.get("VariantName"),
                "instances": v.get("CurrentInstanceCount"),
                "serverless": v.get("CurrentServerlessConfig"),
            }
            for v in desc.get("ProductionVariants", [])
        ],
        "failure_reason": desc.get("FailureReason"),
        "last_modified": str(desc.get("LastModifiedTime", "")),
    }


def upload_model_tar(path: Path, *, bucket: str, key: str, region: str, session: Any = None) -> str:
    """Upload ``model.tar.gz`` to ``s3://bucket/key`` (server-side encrypted) and
    return that URI. Idempotent for equal bytes. Raises InvokeError when S3 refuses."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    client = _session(region, session).client("s3", region_name=region)
    try:
        client.upload_file(
            str(path), bucket, key,
            ExtraArgs={"ContentType": "application/gzip", "ServerSideEncryption": "AES256"},
        )  # fmt: skip
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
        raise InvokeError(f"cannot upload {path} to s3://{bucket}/{key}: {exc}") from None
    return f"s3://{bucket}/{key}"


class SageMakerProvider(PulumiProvider):
    name: ClassVar[str] = "sagemaker"
    config_model = SageMakerConfig
    plugin_packages = (("aws", "pulumi_aws"), ("docker-build", "pulumi_docker_build"))

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

    def program(self, *, ctx: ProviderContext, bundle: Bundle):
        from slml.infra.sagemaker import SageMakerSpec, check_variant

        cfg = self.section(ctx)
        spec = SageMakerSpec.from_config(
            cfg, name=ctx.name, stage=ctx.stage, image=container_ops.image_source(cfg, bundle),
            model_tar=bundle.files["model_tar"], sha=bundle.model_sha256,
        )  # fmt: skip
        spec = with_model_env(spec, ctx, "sagemaker")  # slml.yaml env:, the model's
        check_variant(spec)

        def run() -> None:
            import pulumi

            from slml.infra.sagemaker import SageMakerModel

            model = SageMakerModel(f"{ctx.name}-{ctx.stage}", spec)
            pulumi.export("url", model.url)
            pulumi.export("endpoint_name", model.endpoint_name)
            pulumi.export("image", model.image)
            pulumi.export("model_data_url", model.model_data_url)
            pulumi.export("region", cfg.region)

        return run

    def endpoint(self, outputs: dict[str, Any]) -> str:
        return str(outputs.get("url", ""))

    def stack_config(self, ctx: ProviderContext) -> dict[str, str]:
        return {"aws:region": self.section(ctx).region}

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle):
        source = container_ops.image_source(self.section(ctx), bundle)
        container_ops.require_builder(self.name, source, self._docker_check)
        return super().deploy(ctx=ctx, bundle=bundle)

    def _endpoint(self, ctx: ProviderContext) -> tuple[dict[str, Any], str, str]:
        record = self.record(ctx)
        out = record.get("outputs", {})
        return record, out["endpoint_name"], out.get("region") or self.section(ctx).region

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        _, endpoint, region = self._endpoint(ctx)
        return invoke_endpoint(endpoint, payload, region=region, session=self._session)

    def status(self, *, ctx: ProviderContext) -> Status:
        record, endpoint, region = self._endpoint(ctx)
        details = describe_endpoint(endpoint, region=region, session=self._session)
        return Status(
            provider=self.name,
            stage=ctx.stage,
            state=_STATES.get(details["endpoint_status"], "deployed"),
            url=record.get("url"),
            version=record.get("version"),
            details=details,
        )

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """The endpoint container's last ``lines`` log lines (the runtime's JSON request
        lines among them), oldest first; ``follow`` keeps polling every 2 s."""
        _, endpoint, region = self._endpoint(ctx)
        return aws_ops.tail_logs(
            log_group=log_group(endpoint), region=region, lines=lines, follow=follow,
            session=self._session, missing_hint=LOGS_MISSING_HINT, sleep=self._sleep,
        )  # fmt: skip
