"""``--provider sagemaker``: build + offline plan, and the boto3 operations (invoke,
status, S3 upload of model.tar.gz, logs from CloudWatch Logs) against moto.

moto's sagemaker-runtime ``invoke_endpoint`` answers static data unless a result queue
is configured through its documented ``/moto-api/static/sagemaker/endpoint-results``
API; the tests queue the JSON a real endpoint would return and check what boto3 sent
comes back parsed."""

from __future__ import annotations

import hashlib
import itertools
import time
from pathlib import Path

import boto3
import pytest
import requests
from moto import mock_aws

from slml.config import ProjectConfig
from slml.errors import InvokeError, NotDeployed, ProviderUnavailable
from slml.providers.base import NullReporter, ProviderContext
from slml.providers.sagemaker import SageMakerProvider
from slml.providers.sagemaker_ops import describe_endpoint, invoke_endpoint, upload_model_tar
from slml.state import ProjectState

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)


def make_ctx(tmp_path: Path, artifact: Path, **section) -> ProviderContext:
    config = ProjectConfig(name="iris", model=artifact, sagemaker=section, provider="sagemaker")
    return ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())


def test_build_writes_context_and_tarball_then_offline_plan(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact, memory=4096, max_concurrency=9)
    provider = SageMakerProvider(cli_available=lambda: False)
    bundle = provider.build(ctx=ctx)
    assert bundle.files["model_tar"].name == "model.tar.gz" and bundle.files["model_tar"].is_file()
    plan = provider.plan(ctx=ctx, bundle=bundle)
    assert plan.kind == "offline"
    by_type = {r.type: r for r in plan.resources}
    config = by_type["aws:sagemaker/endpointConfiguration:EndpointConfiguration"].inputs
    (variant,) = config["production_variants"]
    assert variant["serverless_config"] == {"memory_size_in_mb": 4096, "max_concurrency": 9}
    obj = by_type["aws:s3/bucketObjectv2:BucketObjectv2"].inputs
    assert obj["source"] == f"FileAsset({bundle.files['model_tar']})"


def test_deploy_without_a_builder_says_what_to_do(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    provider = SageMakerProvider(
        cli_available=lambda: True, docker_check=lambda: "the docker CLI is not installed"
    )
    bundle = provider.build(ctx=ctx)
    with pytest.raises(ProviderUnavailable) as err:
        provider.deploy(ctx=ctx, bundle=bundle)
    assert "builds a container image" in err.value.message
    assert "sagemaker.image_uri" in err.value.hint


def queue_results(*bodies: str) -> None:
    results = [
        {"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}
        for body in bodies
    ]
    answer = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"region": REGION, "results": results},
        timeout=5,
    )
    assert answer.status_code == 201


@mock_aws
def test_invoke_endpoint_parses_the_json_answer(iris_rows) -> None:
    queue_results('{"predictions": [0, 2, 1]}')
    answer = invoke_endpoint("iris-dev", {"instances": iris_rows}, region=REGION)
    assert answer == {"predictions": [0, 2, 1]}


@mock_aws
def test_invoke_endpoint_non_json_is_an_invoke_error() -> None:
    queue_results("<html>oops</html>")
    with pytest.raises(InvokeError, match="non-JSON"):
        invoke_endpoint("iris-dev", {"instances": []}, region=REGION)


@mock_aws
def test_provider_invoke_and_status_use_the_record(tmp_path, iris_artifact, iris_rows) -> None:
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model(
        ModelName="iris-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris:1"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="iris-config",
        ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "iris-model",
            "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
        }],
    )  # fmt: skip
    sm.create_endpoint(EndpointName="iris-dev", EndpointConfigName="iris-config")
    ctx = make_ctx(tmp_path, iris_artifact)
    url = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/iris-dev/invocations"
    outputs = {"url": url, "endpoint_name": "iris-dev", "region": REGION}
    ctx.state.write_record("dev", "sagemaker", {"url": url, "version": 2, "outputs": outputs})
    provider = SageMakerProvider(session=boto3.Session(region_name=REGION))
    status = provider.status(ctx=ctx)
    assert status.state == "running" and status.url == url and status.version == 2
    assert status.details["endpoint_config"] == "iris-config"
    assert status.details["variants"][0]["name"] == "AllTraffic"
    queue_results('{"predictions": [1]}')
    assert provider.invoke(ctx=ctx, payload={"instances": iris_rows[:1]}) == {"predictions": [1]}


@mock_aws
def test_describe_missing_endpoint_is_an_invoke_error() -> None:
    with pytest.raises(InvokeError, match="no endpoint 'gone'"):
        describe_endpoint("gone", region=REGION)


@mock_aws
def test_upload_model_tar_puts_the_exact_bytes(tmp_path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="artifacts")
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(b"\x1f\x8b" + b"x" * 1000)
    uri = upload_model_tar(tar, bucket="artifacts", key="models/ab/model.tar.gz", region=REGION)
    assert uri == "s3://artifacts/models/ab/model.tar.gz"
    got = s3.get_object(Bucket="artifacts", Key="models/ab/model.tar.gz")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(tar.read_bytes()).digest()
    assert got["ServerSideEncryption"] == "AES256"
    with pytest.raises(InvokeError, match="cannot upload"):
        upload_model_tar(tar, bucket="no-such-bucket", key="k", region=REGION)


def record_endpoint(ctx: ProviderContext, endpoint: str = "iris-dev") -> None:
    url = f"https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/{endpoint}/invocations"
    outputs = {"url": url, "endpoint_name": endpoint, "region": REGION}
    ctx.state.write_record("dev", "sagemaker", {"url": url, "version": 1, "outputs": outputs})


@mock_aws
def test_logs_read_the_endpoint_group_across_instances_then_follow(tmp_path, iris_artifact) -> None:
    """Two instance streams (SageMaker names them ``<variant>/<instance id>``); the last
    N lines come oldest first across both; follow polls after each injected sleep."""
    group = "/aws/sagemaker/Endpoints/iris-dev"
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=group)
    for stream in ("AllTraffic/i-aaa", "AllTraffic/i-bbb"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    for i in range(6):
        logs.put_log_events(
            logGroupName=group, logStreamName=("AllTraffic/i-aaa", "AllTraffic/i-bbb")[i % 2],
            logEvents=[{"timestamp": now + i, "message": f'{{"event": "request", "n": {i}}}\n'}],
        )  # fmt: skip
    later = iter(range(100, 103))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # a new line lands while "sleeping"
        sleeps.append(seconds)
        n = next(later)
        logs.put_log_events(
            logGroupName=group, logStreamName="AllTraffic/i-aaa",
            logEvents=[{"timestamp": now + n, "message": f"line {n}"}],
        )  # fmt: skip

    ctx = make_ctx(tmp_path, iris_artifact)
    record_endpoint(ctx)
    provider = SageMakerProvider(session=boto3.Session(region_name=REGION), sleep=sleep)
    assert list(provider.logs(ctx=ctx, lines=3)) == [
        '{"event": "request", "n": 3}', '{"event": "request", "n": 4}',
        '{"event": "request", "n": 5}',
    ]  # fmt: skip
    stream = provider.logs(ctx=ctx, lines=1, follow=True)
    got = list(itertools.islice(stream, 4))
    assert got == ['{"event": "request", "n": 5}', "line 100", "line 101", "line 102"]
    assert sleeps == [2.0, 2.0, 2.0]


@mock_aws
def test_logs_before_the_endpoint_ever_started_say_why(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    record_endpoint(ctx)
    provider = SageMakerProvider(session=boto3.Session(region_name=REGION))
    with pytest.raises(InvokeError) as err:
        list(provider.logs(ctx=ctx))
    assert "no log group /aws/sagemaker/Endpoints/iris-dev" in err.value.message
    assert "container first starts" in err.value.hint


def test_logs_without_a_deployment_is_not_deployed(tmp_path, iris_artifact) -> None:
    with pytest.raises(NotDeployed):
        SageMakerProvider().logs(ctx=make_ctx(tmp_path, iris_artifact))


# -- rollouts: variant weights in the preview, serverless refused, shadow, shift ---------
OLD = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-dev@sha256:old",
       "model_data_url": "s3://bkt/models/cdcdcdcdcdcdcdcd/model.tar.gz"}  # fmt: skip
CONFIG_TYPE = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def fake_bundle(tmp_path: Path):
    from slml.providers.base import Bundle, SizeReport

    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "model.tar.gz").write_bytes(b"tar")
    return Bundle(provider="sagemaker", path=context, lock_hash="l" * 8, model_sha256="ab" * 32,
                  python_version="3.11", platform="linux/amd64", size=SizeReport(unzipped=1),
                  files={"model_tar": tmp_path / "model.tar.gz"})  # fmt: skip


def rollout_ctx(tmp_path, artifact, mode="canary", **section):
    from dataclasses import replace

    from slml.rollout import LiveVersion, RolloutRequest

    ctx = make_ctx(tmp_path, artifact, **section)
    ctx.state.write_record("dev", "sagemaker", {"version": 3, "url": "u", "outputs": {
        "endpoint_name": "iris-dev", "region": REGION, **OLD}})  # fmt: skip
    live = (LiveVersion(3, 100.0, "primary"),)  # no ref: a SageMaker variant is v<N>
    return replace(ctx, rollout=RolloutRequest(mode, 10, live))


def test_preview_of_a_canary_shows_the_variant_weights(tmp_path, iris_artifact) -> None:
    ctx = rollout_ctx(tmp_path, iris_artifact, instance_type="ml.m5.large")
    plan = SageMakerProvider(cli_available=lambda: False).plan(
        ctx=ctx, bundle=fake_bundle(tmp_path))
    config = next(r for r in plan.resources if r.type == CONFIG_TYPE).inputs
    assert [(v["variant_name"], v["initial_variant_weight"])
            for v in config["production_variants"]] == [("v3", 0.9), ("v4", 0.1)]
    old = next(r for r in plan.resources if r.name == "iris-dev-model-v3").inputs
    assert old["primary_container"]["image"] == OLD["image"]  # the live version, unchanged
    assert ("traffic: variants v3 weight 0.9 (90% primary), v4 weight 0.1 (10% canary)"
            in plan.notes)  # fmt: skip


def test_preview_of_a_shadow_shows_the_shadow_variant(tmp_path, iris_artifact) -> None:
    ctx = rollout_ctx(tmp_path, iris_artifact, mode="shadow", instance_type="ml.m5.large")
    plan = SageMakerProvider(cli_available=lambda: False).plan(
        ctx=ctx, bundle=fake_bundle(tmp_path))
    config = next(r for r in plan.resources if r.type == CONFIG_TYPE).inputs
    assert [v["variant_name"] for v in config["production_variants"]] == ["v3"]
    assert [v["variant_name"] for v in config["shadow_production_variants"]] == ["v4"]
    assert "v4 shadow variant (a copy of every call)" in plan.notes[-1]


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_serverless_refuses_canary_and_shadow_saying_why(tmp_path, iris_artifact, mode) -> None:
    ctx = rollout_ctx(tmp_path, iris_artifact, mode=mode)
    with pytest.raises(ProviderUnavailable, match="exactly one production variant") as err:
        SageMakerProvider(cli_available=lambda: False).plan(
            ctx=ctx, bundle=fake_bundle(tmp_path))
    assert "serverless-endpoints" in err.value.message
    assert "instance_type" in (err.value.hint or "")


def test_promote_by_shift_keeps_only_the_new_variant(tmp_path, iris_artifact, mocked_engine):
    from slml.providers.rollout_base import keep_bundle
    from slml.rollout import LiveVersion

    ctx = make_ctx(tmp_path, iris_artifact, instance_type="ml.m5.large")
    new = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-dev@sha256:new",
           "model_data_url": "s3://bkt/models/abababababababab/model.tar.gz"}  # fmt: skip
    traffic = [{"version": 3, "percent": 90.0, "role": "primary", "ref": "v3"},
               {"version": 4, "percent": 10.0, "role": "canary", "ref": "v4"}]
    ctx.state.write_record("dev", "sagemaker", {"version": 4, "url": "u", "outputs": {
        "endpoint_name": "iris-dev", "region": REGION, "traffic": traffic, **new,
        "models": {"3": OLD, "4": new}}})  # fmt: skip
    provider = SageMakerProvider(engine_factory=mocked_engine, cli_available=lambda: True)
    keep_bundle(provider.kept_dir(ctx), fake_bundle(tmp_path))
    result = provider.shift(ctx=ctx, traffic=(LiveVersion(4, 100.0, "primary"),))
    config = mocked_engine.resource(CONFIG_TYPE).inputs
    assert [(v["variant_name"], v["initial_variant_weight"])
            for v in config["production_variants"]] == [("v4", 1.0)]
    models = mocked_engine.resources("aws:sagemaker/model:Model")
    assert [m.name for m in models] == ["iris-dev-model-v4"]
    assert models[0].inputs["primary_container"]["image"] == new["image"]  # pinned, no build
    assert result.traffic == (LiveVersion(4, 100.0, "primary", "v4"),)
