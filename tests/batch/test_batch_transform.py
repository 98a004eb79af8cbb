"""`slml batch --provider sagemaker`: a Batch Transform job with the endpoint's own model,
its S3 grant added for the job and removed after; AWS is moto, the preview a subprocess."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from slml.api import open_session
from slml.batch import BatchError
from slml.batch import transform as tf
from tests.batch.conftest import SLML

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
IN, OUT = "s3://slml-in/tables/rows.csv", "s3://slml-out/scored"
ROLE = "iris-dev-sagemaker-role"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(key, value)


def deployed(project: Path):
    """A session whose sagemaker record names an endpoint that exists in moto."""
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iam.put_role_policy(RoleName=ROLE, PolicyName="hosting", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                  "Resource": "arn:aws:s3:::m/model.tar.gz"}]}))
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model(ModelName="iris-model-v3", ExecutionRoleArn=arn, PrimaryContainer={
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris:3",
        "ModelDataUrl": "s3://m/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="iris-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "iris-model-v3",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    sm.create_endpoint(EndpointName="iris-dev", EndpointConfigName="iris-config")
    session = open_session(project / "slml.yaml", provider="sagemaker")
    session.ctx.state.write_record("dev", "sagemaker", {
        "provider": "sagemaker", "stage": "dev", "version": 3,
        "outputs": {"endpoint_name": "iris-dev", "region": REGION}})
    return session


def spec_of(session, **kwargs) -> tf.TransformSpec:
    options = {"input_format": None, "instance_type": "ml.m5.large", "instance_count": 2,
               "for_preview": False, "now": datetime(2026, 12, 1, 23, 0, tzinfo=UTC)}
    return tf.transform_spec(session, IN, OUT, **{**options, **kwargs})


@mock_aws
def test_the_job_runs_the_endpoint_model_and_its_grant_lives_only_as_long(project) -> None:
    session = deployed(project)
    spec = spec_of(session)
    assert spec.job == "iris-dev-batch-20261201-230000" and spec.content_type == "text/csv"
    seen: list[str] = []
    runner = tf.TransformRunner(spec, session=boto3.Session(region_name=REGION),
                                poll_seconds=0, sleep=lambda s: None, on_status=seen.append)
    model, role = runner.start()
    assert (model, role) == ("iris-model-v3", ROLE)
    iam = boto3.client("iam", region_name=REGION)
    grant = iam.get_role_policy(RoleName=ROLE, PolicyName=spec.grant_name())["PolicyDocument"]
    resources = {s["Sid"]: s["Resource"] for s in grant["Statement"]}
    assert resources == {"ReadInput": "arn:aws:s3:::slml-in/tables/rows.csv*",
                         "ListInput": "arn:aws:s3:::slml-in",
                         "WriteOutput": "arn:aws:s3:::slml-out/scored/*"}
    job = boto3.client("sagemaker", region_name=REGION).describe_transform_job(
        TransformJobName=spec.job)
    assert job["ModelName"] == "iris-model-v3"
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["TransformInput"]["ContentType"] == "text/csv"
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 2}
    result = runner.wait(role)
    assert result["status"] == "Completed" and result["output"] == "s3://slml-out/scored/"
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["hosting"]
    assert any("Completed" in line for line in seen)


@mock_aws
def test_a_later_run_sweeps_the_grants_of_ended_jobs_only(project) -> None:
    session = deployed(project)
    iam = boto3.client("iam", region_name=REGION)
    for stale in ("slml-batch-never-created", "unrelated"):
        iam.put_role_policy(RoleName=ROLE, PolicyName=stale, PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::x/*"}]}))
    runner = tf.TransformRunner(spec_of(session), session=boto3.Session(region_name=REGION))
    assert runner.sweep(ROLE) == ["slml-batch-never-created"]
    assert sorted(iam.list_role_policies(RoleName=ROLE)["PolicyNames"]) == ["hosting",
                                                                             "unrelated"]


@mock_aws
def test_an_endpoint_gone_from_aws_is_a_clear_error(project) -> None:
    session = deployed(project)
    boto3.client("sagemaker", region_name=REGION).delete_endpoint(EndpointName="iris-dev")
    runner = tf.TransformRunner(spec_of(session), session=boto3.Session(region_name=REGION))
    with pytest.raises(BatchError, match="AWS refused describe_endpoint") as info:
        runner.start()
    assert "slml status --provider sagemaker" in (info.value.hint or "")


def test_the_cli_previews_grant_and_job_without_aws(project) -> None:
    done = subprocess.run([SLML, "batch", IN, OUT, "--provider", "sagemaker", "--instances",
                           "3", "--preview", "--json"], cwd=project, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    kinds = {r["type"]: r for r in plan["resources"]}
    job = kinds["aws:sagemaker:TransformJob"]["inputs"]
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 3}
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == IN
    grant = kinds["aws:iam/rolePolicy:RolePolicy"]["inputs"]["policy"]
    assert [s["Sid"] for s in grant["Statement"]] == ["ReadInput", "ListInput", "WriteOutput"]
    assert plan["kind"] == "offline" and "not deployed yet" in plan["steps"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gs://b/rows.csv", OUT], "INPUT 'gs://b/rows.csv' is not an s3://bucket/prefix"),
        (["s3://slml-in/t.parquet", OUT], "Parquet cannot be split"),
        (["s3://slml-in/tables/", OUT], "cannot tell the format"),
        ([IN, OUT, "--instance-type", "m5.large"], "is not a SageMaker instance type"),
        ([IN, OUT, "--instances", "0"], "--instances 0 is below 1"),
    ],
)
def test_bad_jobs_are_clear_errors(project: Path, args: list[str], message: str) -> None:
    done = subprocess.run([SLML, "batch", *args, "--provider", "sagemaker", "--preview"],
                          cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_without_an_endpoint_a_real_run_refuses_before_calling_aws(project: Path) -> None:
    session = open_session(project / "slml.yaml", provider="sagemaker")
    with pytest.raises(BatchError, match="has no SageMaker endpoint"):
        spec_of(session)
