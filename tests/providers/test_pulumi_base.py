"""PulumiProvider: plan (offline without the CLI, real preview with it), deploy records,
destroy, and the defaults, with a toy subclass and an injected fake engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from slml.config import parse_config
from slml.errors import DeployError, NotDeployed, ProviderUnavailable
from slml.providers.base import (
    Bundle,
    NullReporter,
    Plan,
    PlannedResource,
    ProviderContext,
    SizeReport,
)
from slml.providers.pulumi_base import OFFLINE_NOTE, PulumiProvider
from slml.state import ProjectState


class ToyProvider(PulumiProvider):
    name = "aws"

    def build(self, *, ctx: ProviderContext) -> Bundle:
        return Bundle(
            provider="aws", path=ctx.project_dir, lock_hash="lock1",
            model_sha256=(ctx.config.model / "id").read_text(),  # stands for the digest
            python_version="3.12", platform="x86_64-manylinux_2_34", size=SizeReport(unzipped=1),
            notes=("built for testing",),
        )  # fmt: skip

    def program(self, *, ctx: ProviderContext, bundle: Bundle):
        def run() -> None:
            bucket = aws.s3.Bucket(f"{ctx.name}-artifacts", tags={"stage": ctx.stage})
            pulumi.export("url", bucket.bucket_regional_domain_name)

        return run

    def warnings(self, ctx: ProviderContext) -> list[str]:
        return ["this endpoint will be PUBLIC"]


class FakeEngine:
    def __init__(self, *args: Any, fail: bool = False, **kwargs: Any) -> None:
        self.args, self.kwargs, self.fail = args, kwargs, fail
        self.calls: list[str] = []

    def preview(self, program, *, provider: str, stage: str) -> Plan:
        if self.fail:
            raise DeployError("pulumi preview failed: no credentials")
        return Plan(provider=provider, stage=stage, kind="pulumi",
                    resources=(PlannedResource(type="t", name="n", op="update"),))  # fmt: skip

    def up(self, program, *, on_output=None) -> dict[str, Any]:
        if self.fail:
            raise DeployError("pulumi up failed: quota")
        self.calls.append("up")
        return {"url": "https://abc.execute-api.us-east-1.amazonaws.com", "function_name": "f"}

    def destroy(self, *, on_output=None) -> None:
        self.calls.append("destroy")


@pytest.fixture
def ctx(tmp_path: Path) -> ProviderContext:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "id").write_text("sha1")
    config = parse_config("name: iris\nmodel: model\nstage: dev\n", base_dir=tmp_path)
    return ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())


def _provider(cli: bool, **engine_kwargs: Any) -> tuple[ToyProvider, list[FakeEngine]]:
    made: list[FakeEngine] = []

    def factory(*args: Any, **kwargs: Any) -> FakeEngine:
        made.append(FakeEngine(*args, **engine_kwargs, **kwargs))
        return made[-1]

    return ToyProvider(engine_factory=factory, cli_available=lambda: cli), made


def test_plan_without_cli_is_an_offline_plan_labelled_as_such(ctx):
    provider, made = _provider(cli=False)
    plan = provider.plan(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert plan.kind == "offline" and not made
    (bucket,) = plan.resources
    assert bucket.type == "aws:s3/bucket:Bucket" and bucket.name == "iris-artifacts"
    assert bucket.inputs["tags"] == {"stage": "dev"}
    assert plan.notes[0].startswith(OFFLINE_NOTE) and "not installed" in plan.notes[0]
    assert "built for testing" in plan.notes
    assert plan.warnings == ("this endpoint will be PUBLIC",)


def test_plan_with_cli_uses_the_engine_with_stack_and_project_names(ctx):
    provider, made = _provider(cli=True)
    plan = provider.plan(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert plan.kind == "pulumi" and plan.resources[0].op == "update"
    assert made[0].args == ("iris", "iris-dev")
    assert made[0].kwargs["work_dir"] == ctx.project_dir
    assert plan.warnings == ("this endpoint will be PUBLIC",)


def test_plan_falls_back_to_offline_when_the_real_preview_fails(ctx):
    provider, _ = _provider(cli=True, fail=True)
    plan = provider.plan(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert plan.kind == "offline" and "no credentials" in plan.notes[0]


def test_deploy_without_cli_says_how_to_install_and_points_to_preview(ctx):
    provider, _ = _provider(cli=False)
    with pytest.raises(ProviderUnavailable) as info:
        provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert "Pulumi CLI" in info.value.message and "slml preview" in info.value.hint
    assert ctx.state.read_record("dev", "aws") is None


def test_deploy_records_versions_and_history_then_destroy_forgets(ctx):
    provider, made = _provider(cli=True)
    bundle = provider.build(ctx=ctx)
    first = provider.deploy(ctx=ctx, bundle=bundle)
    second = provider.deploy(ctx=ctx, bundle=bundle)
    assert (first.version, second.version) == (1, 2)
    assert first.url == "https://abc.execute-api.us-east-1.amazonaws.com"
    record = ctx.state.read_record("dev", "aws")
    assert record["version"] == 2 and record["stack"] == "iris-dev"
    assert record["outputs"]["function_name"] == "f" and record["lock_hash"] == "lock1"
    assert ("warn", "this endpoint will be PUBLIC") in ctx.reporter.events
    provider.destroy(ctx=ctx)
    assert ctx.state.read_record("dev", "aws") is None
    assert [e["event"] for e in ctx.state.history()] == ["deploy", "deploy", "destroy"]
    assert made[-1].calls == ["destroy"]


def test_failed_deploy_is_in_history_and_leaves_the_record(ctx):
    provider, _ = _provider(cli=True)
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    failing, _ = _provider(cli=True, fail=True)
    with pytest.raises(DeployError, match="quota"):
        failing.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert ctx.state.read_record("dev", "aws")["version"] == 1
    assert ctx.state.history()[-1]["event"] == "deploy-failed"
    assert ctx.state.next_version("dev", "aws") == 3  # a failed version number is not reused


def test_destroy_and_operations_without_a_deployment(ctx):
    provider, _ = _provider(cli=True)
    provider.destroy(ctx=ctx)  # idempotent, like the local provider: says so, no error
    assert any("nothing to destroy" in message for _, message in ctx.reporter.events)
    with pytest.raises(ProviderUnavailable, match="provider cannot report a status"):
        provider.status(ctx=ctx)
    with pytest.raises(ProviderUnavailable, match="provider cannot invoke"):
        provider.invoke(ctx=ctx, payload={})
    with pytest.raises(NotDeployed):
        provider.record(ctx)


def test_rollback_deploys_an_archived_earlier_model_as_a_new_version(ctx):
    provider, _ = _provider(cli=True)
    model = ctx.config.model
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))  # v1: sha1
    (model / "id").write_text("sha2")
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))  # v2: sha2
    (model / "id").write_text("sha3, not deployed")  # the model path moved on since

    back = provider.rollback(ctx=ctx)
    record = ctx.state.read_record("dev", "aws")
    assert back.version == 3 and record["model_sha256"] == "sha1"
    assert Path(record["artifact"]) == ctx.state.path("artifacts", "sha1")
    assert provider.rollback(ctx=ctx, version=2).version == 4
    assert ctx.state.read_record("dev", "aws")["model_sha256"] == "sha2"
    assert (model / "id").read_text() == "sha3, not deployed"  # the user's files untouched

    with pytest.raises(DeployError, match="no aws deployment of version 9"):
        provider.rollback(ctx=ctx, version=9)


def test_rollback_without_an_earlier_version_or_cli(ctx):
    provider, _ = _provider(cli=True)
    with pytest.raises(DeployError, match="an earlier version"):
        provider.rollback(ctx=ctx)
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    (ctx.config.model / "id").write_text("sha2")
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    offline, _ = _provider(cli=False)
    with pytest.raises(ProviderUnavailable, match="Pulumi CLI"):
        offline.rollback(ctx=ctx)
    assert ctx.state.read_record("dev", "aws")["version"] == 2
