"""AwsProvider: warnings, the offline plan of its program, API keys, and the operations
wired to the deployment record (boto3 against moto, HTTP over MockTransport)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import boto3
import httpx
import pytest
from moto import mock_aws

from slml.config import parse_config
from slml.errors import NotDeployed, ProviderUnavailable
from slml.providers.aws import PLACEHOLDER_KEY, AwsProvider
from slml.providers.base import Bundle, NullReporter, ProviderContext, SizeReport
from slml.providers.registry import get_provider
from slml.state import ProjectState

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com"


def context(tmp_path: Path, aws_yaml: str = "") -> ProviderContext:
    text = f"name: iris\nmodel: model\nprovider: aws\naws:\n  region: eu-west-1\n{aws_yaml}"
    config = parse_config(text, base_dir=tmp_path)
    return ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())


def fake_bundle(tmp_path: Path, *, layer_zipped: int = 1000) -> Bundle:
    (tmp_path / "function.zip").write_bytes(b"PK")
    (tmp_path / "layer.zip").write_bytes(b"PK")
    parts = {"layer_zipped": layer_zipped, "function_zipped": 2, "layer": 10, "function": 5}
    return Bundle(
        provider="aws", path=tmp_path, lock_hash="l", model_sha256="m", python_version="3.12",
        platform="x86_64-manylinux_2_34", size=SizeReport(unzipped=15, zipped=4, parts=parts),
        files={"zip": tmp_path / "function.zip", "layer": tmp_path / "layer.zip"},
    )  # fmt: skip


def provider(cli: bool = False) -> AwsProvider:
    return AwsProvider(cli_available=lambda: cli)


def test_registered_through_the_entry_point():
    assert isinstance(get_provider("aws"), AwsProvider)


def test_warnings_in_plain_words(tmp_path):
    assert provider().warnings(context(tmp_path)) == []
    words = provider().warnings(context(tmp_path, "  auth: none\n  timeout: 60\n"))
    assert any("PUBLIC: anyone with the URL can call it" in w for w in words)
    assert any("HTTP API integrations time out at 30 s" in w for w in words)


def test_offline_plan_of_the_program(tmp_path):
    ctx = context(tmp_path, "  architecture: arm64\n  memory: 2048\n  auth: none\n")
    plan = provider().plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    assert plan.kind == "offline" and "offline plan" in plan.notes[0]
    by_type = {r.type: r for r in plan.resources}
    assert by_type["pulumi:providers:aws"].inputs["region"] == "eu-west-1"
    fn = by_type["aws:lambda/function:Function"]
    assert fn.inputs["architectures"] == ["arm64"] and fn.inputs["memory_size"] == 2048
    assert fn.inputs["handler"] == "slml_handler.handler"
    assert "role" in fn.unknowns and fn.parent == "iris"
    assert by_type["aws:apigatewayv2/route:Route"].inputs["authorization_type"] == "NONE"
    assert any("PUBLIC" in w for w in plan.warnings)
    assert "aws:s3/bucket:Bucket" not in by_type  # small zips go up directly


def test_large_zips_plan_an_s3_upload(tmp_path):
    plan = provider().plan(
        ctx=context(tmp_path), bundle=fake_bundle(tmp_path, layer_zipped=60 << 20)
    )
    types = [r.type for r in plan.resources]
    assert (
        "aws:s3/bucket:Bucket" in types and types.count("aws:s3/bucketObjectv2:BucketObjectv2") == 2
    )


def test_api_key_is_a_placeholder_in_previews_and_generated_once_for_deploys(tmp_path):
    ctx = context(tmp_path, "  auth: api_key\n")
    plan = provider().plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    fn = next(r for r in plan.resources if r.type == "aws:lambda/function:Function")
    assert fn.inputs["environment"] == "[secret]"  # the key makes the whole map secret
    assert not provider().api_key_path(ctx).exists()
    assert provider().api_key(ctx, create=False) == PLACEHOLDER_KEY
    key = provider().api_key(ctx, create=True)
    assert len(key) >= 40 and provider().api_key(ctx, create=True) == key
    assert stat.S_IMODE(os.stat(provider().api_key_path(ctx)).st_mode) == 0o600


def test_deploy_without_the_cli_stops_before_generating_anything(tmp_path):
    ctx = context(tmp_path, "  auth: api_key\n")
    with pytest.raises(ProviderUnavailable) as info:
        provider(cli=False).deploy(ctx=ctx, bundle=fake_bundle(tmp_path))
    assert "slml preview" in info.value.hint
    assert not provider().api_key_path(ctx).exists()


def record(ctx: ProviderContext, auth: str = "iam") -> None:
    outputs = {
        "url": URL,
        "function_name": "iris-dev",
        "api_id": "abc123",
        "log_group": "/aws/lambda/iris-dev",
        "region": "eu-west-1",
        "auth": auth,
    }
    ctx.state.write_record("dev", "aws", {"url": URL, "version": 3, "outputs": outputs})


def test_operations_need_a_deployment(tmp_path):
    ctx = context(tmp_path)
    assert provider().status(ctx=ctx).state == "not-deployed"
    with pytest.raises(NotDeployed):
        provider().invoke(ctx=ctx, payload={})


def test_invoke_uses_the_recorded_url_and_key(tmp_path):
    ctx = context(tmp_path, "  auth: api_key\n")
    record(ctx, auth="api_key")
    key = provider().api_key(ctx, create=True)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"predictions": [1]})

    answer = provider().invoke(
        ctx=ctx, payload={"instances": [[1]]}, transport=httpx.MockTransport(handle)
    )
    assert answer == {"predictions": [1]}
    assert str(seen[0].url) == f"{URL}/predict" and seen[0].headers["x-api-key"] == key


@pytest.fixture
def moto_aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name="eu-west-1")


def test_logs_read_the_recorded_log_group(tmp_path, moto_aws):
    ctx = context(tmp_path)
    record(ctx)
    logs = moto_aws.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/iris-dev")
    logs.create_log_stream(logGroupName="/aws/lambda/iris-dev", logStreamName="s")
    event = {"timestamp": int(time.time() * 1000), "message": json.dumps({"status": 200})}
    logs.put_log_events(logGroupName="/aws/lambda/iris-dev", logStreamName="s", logEvents=[event])
    lines = list(provider().logs(ctx=ctx, lines=10, session=moto_aws))
    assert lines == ['{"status": 200}']


def test_offline_plan_shows_the_authorizer_and_throttling(tmp_path):
    """Issue 11 D15 in the offline preview: what `slml preview --provider aws` prints."""
    yaml = "  auth: api_key\n  throttle: {burst: 10, rate: 2}\n  reserved_concurrency: 3\n"
    plan = provider().plan(ctx=context(tmp_path, yaml), bundle=fake_bundle(tmp_path))
    by_type = {r.type: r for r in plan.resources}
    authorizer = by_type["aws:apigatewayv2/authorizer:Authorizer"]
    assert authorizer.inputs["identity_sources"] == ["$request.header.x-api-key"]
    assert by_type["aws:apigatewayv2/route:Route"].inputs["authorization_type"] == "CUSTOM"
    stage = by_type["aws:apigatewayv2/stage:Stage"].inputs["default_route_settings"]
    assert stage == {"throttling_burst_limit": 10, "throttling_rate_limit": 2.0}
    functions = [r for r in plan.resources if r.type == "aws:lambda/function:Function"]
    model = next(f for f in functions if f.inputs["handler"] == "slml_handler.handler")
    assert model.inputs["reserved_concurrent_executions"] == 3
    managed = [r for r in plan.resources if r.type.endswith("rolePolicyAttachment")]
    assert managed == []  # no AWSLambdaBasicExecutionRole (logs:* on *)


# -- rollouts: alias weights in the plan, shadow refused, shift without a build ----------
def canary_ctx(tmp_path: Path, percent: float = 10, live_ref: str | None = "3") -> ProviderContext:
    from dataclasses import replace

    from slml.rollout import LiveVersion, RolloutRequest

    live = (LiveVersion(3, 100.0, "primary", live_ref),)
    return replace(context(tmp_path), rollout=RolloutRequest("canary", percent, live))


def test_preview_of_a_canary_shows_the_alias_weights(tmp_path):
    plan = provider().plan(ctx=canary_ctx(tmp_path), bundle=fake_bundle(tmp_path))
    alias = next(r for r in plan.resources if r.type == "aws:lambda/alias:Alias")
    assert alias.inputs["function_version"] == "3"  # the live version keeps the alias
    assert "routing_config" in alias.unknowns  # keyed by the version this deploy publishes
    (note,) = [n for n in plan.notes if n.startswith("traffic:")]
    assert "alias live -> version 3 (90%)" in note
    assert "additional_version_weights {(published by this deploy): 0.1}" in note
    integration = next(r for r in plan.resources if r.type.endswith("integration:Integration"))
    assert "integration_uri" in integration.unknowns  # the alias's ARN, known after deploy


def test_preview_without_rollout_points_the_alias_at_the_new_version(tmp_path):
    plan = provider().plan(ctx=context(tmp_path), bundle=fake_bundle(tmp_path))
    assert "traffic: alias live -> version (published by this deploy) (100%)" in plan.notes


def test_shadow_is_refused_with_the_reason(tmp_path):
    from dataclasses import replace

    from slml.rollout import LiveVersion, RolloutRequest

    ctx = replace(context(tmp_path), rollout=RolloutRequest(
        "shadow", live=(LiveVersion(3, 100.0, "primary", "3"),)))  # fmt: skip
    with pytest.raises(ProviderUnavailable, match="cannot send a copy") as err:
        provider().plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    assert "--canary" in (err.value.hint or "")


def test_a_canary_needs_a_live_version_and_a_share_below_100(tmp_path):
    from dataclasses import replace

    from slml.errors import DeployError
    from slml.rollout import RolloutRequest

    ctx = replace(context(tmp_path), rollout=RolloutRequest("canary", 10))
    with pytest.raises(DeployError, match="needs a live version"):
        provider().plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    with pytest.raises(DeployError, match="above 0 and below 100"):
        provider().plan(ctx=canary_ctx(tmp_path, percent=100), bundle=fake_bundle(tmp_path))


def test_a_canary_beside_a_version_without_a_recorded_handle_is_refused(tmp_path):
    from slml.errors import DeployError

    with pytest.raises(DeployError, match="not recorded"):
        provider().plan(ctx=canary_ctx(tmp_path, live_ref=None), bundle=fake_bundle(tmp_path))


def test_canary_deploy_then_promote_by_shift(tmp_path, mocked_engine):
    from slml.rollout import LiveVersion

    aws_provider = AwsProvider(engine_factory=mocked_engine, cli_available=lambda: True)
    (tmp_path / "model").mkdir()
    traffic = [{"version": 3, "percent": 90.0, "role": "primary", "ref": "3"},
               {"version": 1, "percent": 10.0, "role": "canary", "ref": "4"}]  # fmt: skip
    mocked_engine.outputs = {"url": URL, "version": "4", "traffic": traffic}
    ctx = canary_ctx(tmp_path)
    result = aws_provider.deploy(ctx=ctx, bundle=fake_bundle(tmp_path))
    assert [(v.version, v.percent, v.role, v.ref) for v in result.traffic] == [
        (3, 90.0, "primary", "3"), (1, 10.0, "canary", "4")]  # fmt: skip
    alias = mocked_engine.resource("aws:lambda/alias:Alias")
    assert alias.inputs["function_version"] == "3"
    # the deployed bundle is kept: a shift rebuilds nothing, even once the build is gone
    (tmp_path / "function.zip").unlink()
    (tmp_path / "layer.zip").unlink()
    promoted = (LiveVersion(1, 100.0, "primary"),)
    mocked_engine.outputs = {"url": URL, "version": "4"}
    shifted = aws_provider.shift(ctx=ctx, traffic=promoted)
    alias = mocked_engine.resource("aws:lambda/alias:Alias")
    assert alias.inputs["function_version"] == "4" and not alias.inputs.get("routing_config")
    assert shifted.traffic == (LiveVersion(1, 100.0, "primary", "4"),)
    assert shifted.version == 1  # the record's version: a shift deploys nothing new
    fn = mocked_engine.resource("aws:lambda/function:Function")
    assert fn.inputs["code"].endswith("deployed/zip-function.zip)")  # the kept copy


def test_shift_to_an_unknown_version_or_bad_shares_is_refused(tmp_path, mocked_engine):
    from slml.errors import DeployError
    from slml.rollout import LiveVersion

    aws_provider = AwsProvider(engine_factory=mocked_engine, cli_available=lambda: True)
    (tmp_path / "model").mkdir()
    mocked_engine.outputs = {"url": URL, "version": "4", "traffic": [
        {"version": 1, "percent": 100.0, "role": "primary", "ref": "4"}]}  # fmt: skip
    ctx = context(tmp_path)
    aws_provider.deploy(ctx=ctx, bundle=fake_bundle(tmp_path))
    with pytest.raises(DeployError, match="version 7 is not deployed"):
        aws_provider.shift(ctx=ctx, traffic=(LiveVersion(7, 100.0, "primary"),))
    with pytest.raises(DeployError, match="add up to 90%"):
        aws_provider.shift(ctx=ctx, traffic=(LiveVersion(1, 90.0, "primary"),))
    with pytest.raises(ProviderUnavailable, match="shadow"):
        aws_provider.shift(ctx=ctx, traffic=(LiveVersion(1, 100.0, "primary"),
                                             LiveVersion(2, 0.0, "shadow", "5")))  # fmt: skip


def test_rollback_after_a_promotion_finds_the_old_version(tmp_path, mocked_engine):
    from slml.providers.rollout_base import keep_bundle
    from slml.rollout import LiveVersion

    ctx = context(tmp_path)
    ctx.state.write_record("dev", "aws", {"version": 4, "url": URL, "outputs": {
        "url": URL, "traffic": [{"version": 4, "percent": 100.0, "role": "primary",
                                 "ref": "12"}],
        "versions": {"3": "11", "4": "12"}}})  # fmt: skip
    aws_provider = AwsProvider(engine_factory=mocked_engine, cli_available=lambda: True)
    keep_bundle(aws_provider.kept_dir(ctx), fake_bundle(tmp_path))
    mocked_engine.outputs = {"url": URL}
    result = aws_provider.shift(ctx=ctx, traffic=(LiveVersion(3, 100.0, "primary"),))
    assert mocked_engine.resource("aws:lambda/alias:Alias").inputs["function_version"] == "11"
    assert result.traffic == (LiveVersion(3, 100.0, "primary", "11"),)


def test_a_canary_of_the_live_artifact_itself_is_refused(tmp_path, mocked_engine):
    from slml.errors import DeployError

    ctx = canary_ctx(tmp_path)
    ctx.state.write_record("dev", "aws", {"version": 3, "url": URL, "model_sha256": "m",
                                          "lock_hash": "l", "outputs": {"version": "3"}})
    aws_provider = AwsProvider(engine_factory=mocked_engine, cli_available=lambda: True)
    with pytest.raises(DeployError, match="already serves"):
        aws_provider.deploy(ctx=ctx, bundle=fake_bundle(tmp_path))
    assert mocked_engine.runs == []  # refused before pulumi up


def test_shadow_is_refused_before_any_build(tmp_path):
    from dataclasses import replace

    from slml.rollout import LiveVersion, RolloutRequest

    ctx = replace(context(tmp_path), rollout=RolloutRequest(
        "shadow", live=(LiveVersion(3, 100.0, "primary", "3"),)))  # fmt: skip
    with pytest.raises(ProviderUnavailable, match="cannot deploy --shadow"):
        AwsProvider(cli_available=lambda: True).preflight(ctx=ctx)


def test_old_published_versions_are_pruned_with_snapstart_only(tmp_path, monkeypatch) -> None:
    """With SnapStart every published version keeps a billed cache: after a deploy the
    provider deletes all but the live ones and the newest 3 (aws.keep_versions); without
    SnapStart or keep_versions nothing is deleted. A refusal is a warning."""
    from dataclasses import replace

    import boto3
    from moto import mock_aws

    from slml.pipeline import DeployResult
    from slml.rollout import LiveVersion
    from tests.providers.test_aws_ops import _function_with_versions, _versions

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    live = (LiveVersion(version=8, percent=90.0, role="primary", ref="2"),
            LiveVersion(version=9, percent=10.0, role="canary", ref="7"))  # fmt: skip
    result = DeployResult(provider="aws", stage="dev", url=URL, version=9, traffic=live,
                          outputs={"function_name": "iris-dev", "region": "eu-west-1",
                                   "version": "7"})  # fmt: skip
    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        _function_with_versions(session, 7)
        plain = AwsProvider(session=session, cli_available=lambda: True)
        assert plain.prune(context(tmp_path), result) == [] and len(_versions(session)) == 7
        snap = context(tmp_path, "  snap_start: true\n")
        assert plain.prune(snap, result) == ["1", "3", "4"]  # 2, 7 live; 5-7 the newest 3
        assert _versions(session) == ["2", "5", "6", "7"]
        assert plain.prune(context(tmp_path, "  keep_versions: 1\n"), result) == ["5", "6"]
        warned = replace(context(tmp_path, "  keep_versions: 1\n"), reporter=Recorder())
        gone = DeployResult(provider="aws", stage="dev", url=URL, version=9,
                            outputs={"function_name": "gone", "region": "eu-west-1"})
        assert plain.prune(warned, gone) == []
        assert any("pruning old versions of gone failed" in m for m in warned.reporter.warnings)


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def step(self, message: str) -> None: ...
    def detail(self, message: str) -> None: ...

    def warn(self, message: str) -> None:
        self.warnings.append(message)
