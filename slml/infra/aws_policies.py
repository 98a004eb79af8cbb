"""Pure helpers for the Lambda component: names within AWS's limits and IAM policy
documents. No Pulumi, no boto3: tested as plain functions."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# AWS name limits (characters)
FUNCTION_NAME_MAX = 64
ROLE_NAME_MAX = 64
LAYER_NAME_MAX = 140
API_NAME_MAX = 128
BUCKET_NAME_MAX = 63
HTTP_API_TIMEOUT_MAX = 30  # seconds: API Gateway HTTP API integrations cap here
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def bounded(name: str, limit: int) -> str:
    """``name`` with unsafe characters replaced by ``-``, shortened to ``limit`` with a
    stable 8-character hash suffix when too long (so two long names stay distinct)."""
    clean = _UNSAFE.sub("-", name).strip("-")
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(clean.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9].rstrip('-')}-{digest}"


def resource_names(project: str, stage: str) -> dict[str, str]:
    """Physical names of the stack's resources, each within its AWS limit."""
    base = f"{project}-{stage}"
    function = bounded(base, FUNCTION_NAME_MAX)
    authorizer = bounded(f"{base}-auth", FUNCTION_NAME_MAX)
    return {
        "function": function,
        "role": bounded(f"{base}-lambda", ROLE_NAME_MAX),
        "layer": bounded(f"{base}-deps", LAYER_NAME_MAX),
        "api": bounded(base, API_NAME_MAX),
        "log_group": f"/aws/lambda/{function}",
        "authorizer": authorizer,
        "authorizer_role": bounded(f"{base}-auth-lambda", ROLE_NAME_MAX),
        "authorizer_log_group": f"/aws/lambda/{authorizer}",
    }


def lambda_trust_policy() -> str:
    """The role's trust policy: only the Lambda service may assume it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def log_write_policy(log_group_arn: str) -> str:
    """What a function needs to log: create streams in and write to its own log group.
    Not ``logs:CreateLogGroup`` (the stack creates the group) and no wildcard group,
    unlike the managed AWSLambdaBasicExecutionRole. The code zips need no grant either:
    Lambda reads them from S3 with the deployer's credentials, not the function's."""
    group = log_group_arn.removesuffix(":*")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [f"{group}:log-stream:*"],
                }
            ],
        }
    )


def route_authorization(auth: str) -> str:
    """The route's authorization type for ``aws.auth``: AWS_IAM for ``iam``; CUSTOM for
    ``api_key`` (a Lambda REQUEST authorizer checks ``x-api-key`` before the model's
    function is invoked); NONE only for ``none`` (public)."""
    return {"iam": "AWS_IAM", "api_key": "CUSTOM", "none": "NONE"}[auth]


#: The authorizer reads the key from this header; a request without it is refused by
#: API Gateway itself (401) without invoking anything.
API_KEY_IDENTITY_SOURCE = "$request.header.x-api-key"
#: How long API Gateway caches an authorizer's answer per key value (its maximum is 3600).
AUTHORIZER_CACHE_SECONDS = 300


def authorizer_source_arn(execution_arn: str, authorizer_id: str) -> str:
    """The authorizer's Permission source ARN: this one authorizer of this one API."""
    return f"{execution_arn}/authorizers/{authorizer_id}"


def integration_timeout_ms(timeout: int) -> int:
    """The HTTP API integration timeout: the function's, capped at 30 s."""
    return min(timeout, HTTP_API_TIMEOUT_MAX) * 1000


def api_source_arn(execution_arn: str) -> str:
    """The Permission's source ARN: any stage and route of this one API, nothing else."""
    return f"{execution_arn}/*/*"


def environment(user_env: dict[str, str], *, api_key: Any | None = None) -> dict[str, Any]:
    """The function's environment: the user's variables plus slml's own."""
    env: dict[str, Any] = {**user_env, "SLML_MODEL_DIR": "/var/task/model"}
    if api_key is not None:
        env["SLML_API_KEY"] = api_key
    return env


def capture_write_policy(capture_env: str | None) -> str | None:
    """The grant a capture sink on S3 needs: ``s3:PutObject`` under its prefix only.
    ``capture_env`` is the function's ``SLML_CAPTURE`` value; None when it has none or
    its sink is not on S3."""
    from slml.infra.capture_grant import object_sink

    found = object_sink(capture_env, "s3")
    if found is None:
        return None
    bucket, prefix = found
    resource = f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}*"
    statement = {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [resource]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
