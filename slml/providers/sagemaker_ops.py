"""SageMaker through boto3: invoke an endpoint, describe it, upload ``model.tar.gz``.

Every call takes an injectable boto3 ``Session`` (tests use moto) and maps the SDK's
errors to ``InvokeError`` with what to do next. The endpoint's logs are CloudWatch Logs
(``aws_ops.tail_logs`` on ``log_group(endpoint)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slml.errors import InvokeError
from slml.providers.aws_ops import make_session


def log_group(endpoint: str) -> str:
    """The CloudWatch Logs group SageMaker writes an endpoint's container output to."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def invoke_endpoint(
    endpoint: str, payload: dict[str, Any], *, region: str, session: Any = None
) -> dict[str, Any]:
    """Call the endpoint with a JSON body (signed by boto3 with the caller's
    credentials); return the parsed JSON answer. Raises InvokeError."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_session(region, session).client("sagemaker-runtime", region_name=region)
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
        answer_json: dict[str, Any] = json.loads(body)
        return answer_json
    except ValueError:
        raise InvokeError(f"endpoint {endpoint!r} answered non-JSON: {body[:200]!r}") from None


def describe_endpoint(endpoint: str, *, region: str, session: Any = None) -> dict[str, Any]:
    """Status, variants and times of the endpoint. Raises InvokeError when it is gone."""
    from botocore.exceptions import ClientError

    client = make_session(region, session).client("sagemaker", region_name=region)
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

    client = make_session(region, session).client("s3", region_name=region)
    try:
        client.upload_file(
            str(path), bucket, key,
            ExtraArgs={"ContentType": "application/gzip", "ServerSideEncryption": "AES256"},
        )  # fmt: skip
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
        raise InvokeError(f"cannot upload {path} to s3://{bucket}/{key}: {exc}") from None
    return f"s3://{bucket}/{key}"
