"""``slml batch --provider sagemaker``: a SageMaker Batch Transform job over S3.

The job runs the SageMaker Model behind the stage's endpoint (same image, same
``model.tar.gz``), found through the endpoint: ``describe_endpoint`` → its endpoint
configuration → the production variant's model → that model's execution role. The role
hosts the endpoint and may read nothing else, so each job adds an inline policy to it,
``slml-batch-<job>``, granting exactly: read the input prefix, write the output prefix.
The grant is removed when the job ends (the run waits for it), or, after ``--no-wait``
or an interrupted wait, by the next ``slml batch --provider sagemaker`` of the project,
which removes the grants of every job that is no longer running.

Batch Transform splits the input by line into mini-batches of up to 6 MB and posts each
to the container's ``/invocations`` with ``Accept: application/jsonlines``; the runtime
answers one line per row (``{"prediction": ...}`` or ``{"error": {...}}``), so a bad row
is reported in its line and never fails the job. SageMaker writes ``<input object>.out``
under OUTPUT: line N answers data row N of that object (a header line is not a row).

All AWS calls go through boto3 with an injectable Session (the tests use moto).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slml.api import Session
from slml.batch import BatchError
from slml.config.sections import SageMakerConfig
from slml.pipeline import Plan, PlannedResource
from slml.providers.outputs import SageMakerOutputs

GRANT_PREFIX = "slml-batch-"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
MAX_PAYLOAD_MB = 6  # the runtime's default body limit (SLML_MAX_BODY_BYTES) is 6 MiB
_RUNNING = ("InProgress", "Stopping")
_CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/jsonlines"}
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
OFFLINE_NOTE = ("offline plan: nothing was sent to AWS; without --preview the grant is "
                "added, the job created, and the run waits for it to end")


@dataclass(frozen=True)
class TransformSpec:
    """Everything the job needs that does not come from AWS itself."""

    job: str
    region: str
    endpoint: str
    input_url: str
    output_url: str
    content_type: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    tags: dict[str, str] = field(default_factory=dict)

    def grant_name(self) -> str:
        return f"{GRANT_PREFIX}{self.job}"[:128]

    def request(self, model_name: str) -> dict[str, Any]:
        """The ``CreateTransformJob`` request."""
        return {
            "TransformJobName": self.job,
            "ModelName": model_name,
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": MAX_PAYLOAD_MB,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                "S3Uri": self.input_url}},
                "ContentType": self.content_type,
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": self.output_url,
                                "Accept": "application/jsonlines", "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": self.instance_type,
                                   "InstanceCount": self.instance_count},
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())],
        }  # fmt: skip


def split_s3(url: str, what: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key). Raises BatchError for anything else."""
    match = re.match(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$", url)
    if not match:
        raise BatchError(
            f"{what} {url!r} is not an s3://bucket/prefix URL",
            hint="a SageMaker Batch Transform job reads and writes S3 only; score other "
                 "locations here with --engine local or ray",
        )
    return match.group(1), match.group(2) or ""


def grant_policy(input_url: str, output_url: str) -> dict[str, Any]:
    """Read the input prefix, write the output prefix, nothing else."""
    in_bucket, in_key = split_s3(input_url, "INPUT")
    out_bucket, out_key = split_s3(output_url, "OUTPUT")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadInput", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{in_bucket}/{in_key}*"},
            {"Sid": "ListInput", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": f"arn:aws:s3:::{in_bucket}",
             "Condition": {"StringLike": {"s3:prefix": [f"{in_key}*"]}}},
            {"Sid": "WriteOutput", "Effect": "Allow",
             "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
             "Resource": f"arn:aws:s3:::{out_bucket}/{out_key}*"},
        ],
    }  # fmt: skip


def content_type(input_url: str, input_format: str | None) -> str:
    """The job's ContentType from ``--input-format`` or INPUT's suffix."""
    fmt = input_format
    if fmt is None:
        name = input_url.rstrip("/").rsplit("/", 1)[-1].lower()
        suffixes = (("csv", ".csv"), ("jsonl", ".jsonl"), ("jsonl", ".json"),
                    ("parquet", ".parquet"), ("parquet", ".pq"))
        fmt = next((f for f, ext in suffixes if name.endswith(ext)), None)
    if fmt == "parquet":
        raise BatchError(
            "SageMaker Batch Transform splits its input by line: Parquet cannot be split",
            hint="write the table as CSV or JSON Lines, or score the Parquet file with "
                 "--engine local or --engine ray (s3:// URLs work there)",
        )
    if fmt not in _CONTENT_TYPES:
        raise BatchError(
            f"cannot tell the format of {input_url!r}",
            hint="name the object .csv or .jsonl, or pass --input-format csv|jsonl",
        )
    return _CONTENT_TYPES[fmt]


def transform_spec(session: Session, input_url: str, output_url: str, *,
                   input_format: str | None, instance_type: str, instance_count: int,
                   for_preview: bool, now: datetime | None = None) -> TransformSpec:
    """The job for ``session``'s stage. Raises BatchError for bad input or options, and
    (unless ``for_preview``) when the stage has no SageMaker endpoint."""
    split_s3(input_url, "INPUT")
    split_s3(output_url, "OUTPUT")
    if not _INSTANCE.match(instance_type):
        raise BatchError(f"--instance-type {instance_type!r} is not a SageMaker instance "
                         "type", hint=f"e.g. {DEFAULT_INSTANCE_TYPE} or ml.c5.xlarge")
    if instance_count < 1:
        raise BatchError(f"--instances {instance_count} is below 1")
    ctx = session.ctx
    cfg = ctx.config.section("sagemaker")
    assert isinstance(cfg, SageMakerConfig)
    recorded = SageMakerOutputs.of(ctx.state.read_record(ctx.stage, "sagemaker"))
    endpoint = recorded.endpoint_name
    if not endpoint:
        if not for_preview:
            raise BatchError(
                f"stage {ctx.stage} has no SageMaker endpoint whose model the job could run",
                hint="run `slml deploy --provider sagemaker` first",
            )
        endpoint = "(the endpoint of `slml deploy --provider sagemaker`: not deployed yet)"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{ctx.config.name}-{ctx.stage}")
    job = f"{base[:63 - len(stamp) - 7].strip('-')}-batch-{stamp}"
    return TransformSpec(
        job=job, region=recorded.region or cfg.region,
        endpoint=str(endpoint), input_url=input_url, output_url=output_url.rstrip("/") + "/",
        content_type=content_type(input_url, input_format), instance_type=instance_type,
        instance_count=instance_count, tags={**cfg.tags, "slml:project": ctx.config.name,
                                             "slml:stage": ctx.stage},
    )  # fmt: skip


def preview(spec: TransformSpec, stage: str) -> Plan:
    """What ``run`` would do, computed here without calling AWS."""
    grant = PlannedResource(
        type="aws:iam/rolePolicy:RolePolicy", name=spec.grant_name(), op="create",
        inputs={"policy": grant_policy(spec.input_url, spec.output_url)},
        unknowns=("role",),
    )
    request = spec.request("(the endpoint's model)")
    job = PlannedResource(type="aws:sagemaker:TransformJob", name=spec.job, op="run",
                          inputs={k: v for k, v in request.items() if k != "Tags"},
                          unknowns=("ModelName",))  # fmt: skip
    steps = (
        f"find the model and execution role behind endpoint {spec.endpoint}",
        f"grant that role read on {spec.input_url} and write on {spec.output_url} "
        f"(inline policy {spec.grant_name()})",
        f"run Batch Transform on {spec.instance_count} x {spec.instance_type}, "
        f"{spec.content_type} split by line, up to {MAX_PAYLOAD_MB} MB per request",
        "wait for it to end, then remove the grant",
    )
    return Plan(provider="sagemaker", stage=stage, kind="offline", resources=(grant, job),
                steps=steps, notes=(OFFLINE_NOTE,))


class TransformRunner:
    """Runs a TransformSpec against AWS. ``session`` is a boto3 Session (injected in
    tests), ``sleep`` and ``poll_seconds`` pace the wait."""

    def __init__(self, spec: TransformSpec, *, session: Any = None, poll_seconds: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 on_status: Callable[[str], None] = lambda message: None) -> None:
        if session is None:
            import boto3

            session = boto3.Session(region_name=spec.region)
        self.spec = spec
        self.sagemaker = session.client("sagemaker", region_name=spec.region)
        self.iam = session.client("iam", region_name=spec.region)
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.on_status = on_status

    def model_and_role(self) -> tuple[str, str]:
        """The endpoint's model and that model's execution role (name, not ARN)."""
        endpoint = self._call("describe_endpoint", EndpointName=self.spec.endpoint)
        config = self._call("describe_endpoint_config",
                            EndpointConfigName=endpoint["EndpointConfigName"])
        variants = config.get("ProductionVariants") or []
        if not variants:
            raise BatchError(f"endpoint {self.spec.endpoint} has no production variant")
        model_name = variants[0]["ModelName"]
        model = self._call("describe_model", ModelName=model_name)
        return model_name, model["ExecutionRoleArn"].rsplit("/", 1)[-1]

    def start(self) -> tuple[str, str]:
        """Sweep finished jobs' grants, grant this job, create it. Returns (model, role)."""
        model_name, role = self.model_and_role()
        self.sweep(role)
        policy = json.dumps(grant_policy(self.spec.input_url, self.spec.output_url))
        self._call("put_role_policy", client=self.iam, RoleName=role,
                   PolicyName=self.spec.grant_name(), PolicyDocument=policy)
        try:
            self._call("create_transform_job", **self.spec.request(model_name))
        except BatchError:
            self._revoke(role, self.spec.grant_name())
            raise
        self.on_status(f"created Batch Transform job {self.spec.job} (model {model_name})")
        return model_name, role

    def wait(self, role: str) -> dict[str, Any]:
        """Poll until the job ends, then remove its grant. Raises BatchError when it
        failed (with SageMaker's reason)."""
        started, last = time.monotonic(), None
        while True:
            desc = self._call("describe_transform_job", TransformJobName=self.spec.job)
            status = desc["TransformJobStatus"]
            if status != last:
                self.on_status(f"{self.spec.job}: {status} "
                               f"({time.monotonic() - started:.0f} s)")
                last = status
            if status not in _RUNNING:
                break
            self.sleep(self.poll_seconds)
        self._revoke(role, self.spec.grant_name())
        if status != "Completed":
            raise BatchError(
                f"Batch Transform job {self.spec.job} ended {status}: "
                f"{desc.get('FailureReason') or 'no reason given'}",
                hint="the container's log is in CloudWatch Logs, group "
                     "/aws/sagemaker/TransformJobs",
            )
        return {"job_name": self.spec.job, "status": status, "output": self.spec.output_url}

    def sweep(self, role: str) -> list[str]:
        """Remove the grants of this role's slml jobs that are no longer running."""
        names = self._call("list_role_policies", client=self.iam, RoleName=role)["PolicyNames"]
        removed = []
        for name in names:
            if not name.startswith(GRANT_PREFIX):
                continue
            job = name.removeprefix(GRANT_PREFIX)
            try:
                status = self._call("describe_transform_job",
                                    TransformJobName=job)["TransformJobStatus"]
            except BatchError:
                status = "Gone"  # never created, or expired from SageMaker's records
            if status not in _RUNNING:
                self._revoke(role, name)
                removed.append(name)
        return removed

    def _revoke(self, role: str, name: str) -> None:
        self._call("delete_role_policy", client=self.iam, RoleName=role, PolicyName=name)

    def _call(self, operation: str, client: Any = None, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(client or self.sagemaker, operation)(**kwargs)
            return answer
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise BatchError(f"AWS refused {operation}: {message}",
                             hint=_hint(operation)) from None
        except BotoCoreError as exc:
            raise BatchError(f"cannot reach AWS for {operation}: {exc}",
                             hint="check your AWS credentials and region") from None


def _hint(operation: str) -> str:
    if operation.startswith("describe_endpoint"):
        return "`slml status --provider sagemaker` shows whether the endpoint still exists"
    if operation.endswith("role_policy") or operation == "list_role_policies":
        return "your credentials need iam:PutRolePolicy/DeleteRolePolicy on the role"
    return "check the job's parameters with --preview"
