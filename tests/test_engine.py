"""slml.engine: the offline plan under Pulumi's mocks and the Automation API wrapper
(driven through an injected fake stack: the Pulumi CLI cannot run here)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.automation import events as ev
from pulumi.runtime import settings

from slml.engine import (
    UNKNOWN_MARK,
    PluginSpec,
    PulumiEngine,
    offline_plan,
    pulumi_cli_available,
    resolve_passphrase,
    snake,
)
from slml.errors import DeployError, ProviderUnavailable


class Box(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("test:index:Box", name)
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": []}),
            tags={"Team": "ml"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.fn = aws.lambda_.Function(
            f"{name}-fn",
            role=self.role.arn,
            runtime="python3.12",
            handler="handler.handler",
            memory_size=512,
            code=pulumi.FileArchive("/tmp/code.zip"),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={"SLML_MODEL_DIR": "m"}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"arn": self.fn.arn})


def program() -> None:
    box = Box("demo")
    pulumi.export("arn", box.fn.arn)


def test_offline_plan_records_resources_inputs_parents_and_unknowns():
    plan = {r.name: r for r in offline_plan(program, project="p", stack="p-dev")}
    assert set(plan) == {"demo", "demo-role", "demo-fn"}
    assert plan["demo"].type == "test:index:Box" and plan["demo"].parent is None
    fn = plan["demo-fn"]
    assert fn.type == "aws:lambda/function:Function"
    assert fn.parent == "demo"
    assert fn.inputs["memory_size"] == 512 and fn.inputs["handler"] == "handler.handler"
    assert fn.inputs["environment"] == {"variables": {"SLML_MODEL_DIR": "m"}}
    assert fn.inputs["code"] == "FileArchive(/tmp/code.zip)"
    # the role's ARN is computed by AWS: the function's role is only known after deploy
    assert fn.inputs["role"] == UNKNOWN_MARK and fn.unknowns == ("role",)
    assert plan["demo-role"].inputs["tags"] == {"Team": "ml"}
    assert plan["demo-role"].unknowns == ()


def test_offline_plan_is_reentrant_and_leaves_no_runtime_state():
    monitor_before = settings.SETTINGS.monitor
    root_before = settings.get_root_resource()
    first = offline_plan(program, project="p", stack="a")
    second = offline_plan(program, project="q", stack="b")
    assert [r.name for r in first] == [r.name for r in second]
    assert settings.SETTINGS.monitor is monitor_before
    assert settings.get_root_resource() is root_before


class _EchoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", {**args.inputs, "arn": f"arn:aws:iam::1:role/{args.name}"}

    def call(self, args):
        return {}, []


def test_pulumi_runtime_tests_still_work_after_an_offline_plan():
    offline_plan(program, project="p", stack="s")
    pulumi.runtime.set_mocks(_EchoMocks(), preview=False)

    @pulumi.runtime.test
    def check():
        role = aws.iam.Role("r", assume_role_policy="{}")
        return role.arn.apply(lambda arn: assert_equal(arn, "arn:aws:iam::1:role/r"))

    check()
    # and an offline plan right after still sees its own mocks, not these
    assert offline_plan(program, project="p", stack="s")[2].inputs["role"] == UNKNOWN_MARK


def assert_equal(a, b) -> None:
    assert a == b


def test_offline_plan_propagates_program_errors():
    def broken() -> None:
        raise ValueError("bad program")

    with pytest.raises(ValueError, match="bad program"):
        offline_plan(broken, project="p", stack="s")
    assert len(offline_plan(program, project="p", stack="s")) == 3


def test_snake_case_keys():
    assert snake("memorySize") == "memory_size"
    assert snake("payloadFormatVersion") == "payload_format_version"
    assert snake("already_snake") == "already_snake"


def test_cli_detection_uses_the_injected_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path))
    assert pulumi_cli_available(lambda name: None) is False
    assert pulumi_cli_available(lambda name: "/usr/bin/pulumi") is True
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pulumi").write_text("")
    assert pulumi_cli_available(lambda name: None) is True


# -- passphrase --------------------------------------------------------------------------


def test_passphrase_from_env_then_file_then_generated(tmp_path):
    assert resolve_passphrase(tmp_path, {"PULUMI_CONFIG_PASSPHRASE": "pw"}) == "pw"
    given = tmp_path / "given"
    given.write_text("from-file\n")
    env = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(given)}
    assert resolve_passphrase(tmp_path, env) == "from-file"
    generated = resolve_passphrase(tmp_path / "pulumi", {})
    path = tmp_path / "pulumi" / "passphrase"
    assert len(generated) >= 32 and path.read_text().strip() == generated
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_passphrase(tmp_path / "pulumi", {}) == generated  # stable


# -- the Automation API wrapper, with a fake stack ---------------------------------------


def _step(op: str, typ: str, name: str, inputs: dict, parent: str = "") -> ev.EngineEvent:
    urn = f"urn:pulumi:dev::p::{typ}::{name}"
    state = ev.StepEventStateMetadata(
        type=typ, urn=urn, id="", parent=parent, provider="", inputs=inputs
    )
    meta = ev.StepEventMetadata(op=ev.OpType(op), urn=urn, type=typ, provider="", new=state)
    return ev.EngineEvent(sequence=1, timestamp=0, resource_pre_event=ev.ResourcePreEvent(meta))


class FakeStack:
    def __init__(self, events=(), outputs=None, fail: str | None = None) -> None:
        self.events, self.outputs, self.fail = list(events), outputs or {}, fail
        self.calls: list[tuple] = []
        self.workspace = SimpleNamespace(
            install_plugin=lambda n, v: self.calls.append(("plugin", n, v))
        )

    def set_config(self, key, value):
        self.calls.append(("config", key, value.value))

    def _maybe_fail(self, action):
        if self.fail == action:
            from pulumi.automation._cmd import CommandResult
            from pulumi.automation.errors import CommandError

            raise CommandError(CommandResult(stdout="", stderr="error: no credentials", code=1))

    def preview(self, on_event, **logging):
        self.calls.append(("preview", logging))
        self._maybe_fail("preview")
        for event in self.events:
            on_event(event)

    def up(self, on_output, **logging):
        self.calls.append(("up", logging))
        self._maybe_fail("up")
        if on_output:
            on_output("Updating (dev)")
        return SimpleNamespace(
            outputs={k: SimpleNamespace(value=v) for k, v in self.outputs.items()}
        )

    def destroy(self, on_output, **logging):
        self.calls.append(("destroy",))


def _engine(tmp_path: Path, stack: FakeStack, seen: dict, *, debug: bool = False) -> PulumiEngine:
    def factory(**kwargs):
        seen.update(kwargs)
        return stack

    return PulumiEngine(
        "iris", "iris-dev", work_dir=tmp_path, plugins=(PluginSpec("aws", "v7.51.1"),),
        config={"aws:region": "eu-west-1"}, stack_factory=factory, debug=debug,
    )  # fmt: skip


def test_engine_settings_file_backend_and_passphrase(tmp_path, monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    seen: dict = {}
    stack = FakeStack(outputs={"url": "https://x"})
    assert _engine(tmp_path, stack, seen).up(program) == {"url": "https://x"}
    opts = seen["opts"]
    backend = tmp_path / ".slml" / "pulumi"
    assert opts.project_settings.backend.url == backend.resolve().as_uri()
    assert backend.is_dir() and opts.secrets_provider == "passphrase"
    passphrase = (backend / "passphrase").read_text().strip()
    assert opts.env_vars["PULUMI_CONFIG_PASSPHRASE"] == passphrase
    assert seen["stack_name"] == "iris-dev" and seen["project_name"] == "iris"
    assert ("plugin", "aws", "v7.51.1") in stack.calls
    assert ("config", "aws:region", "eu-west-1") in stack.calls


def test_engine_preview_maps_step_events(tmp_path):
    parent = "urn:pulumi:dev::p::slml:aws:LambdaModel::iris"
    events = [
        _step("create", "aws:lambda/function:Function", "iris-fn",
              {"memorySize": 1024, "role": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}, parent),
        _step("same", "aws:iam/role:Role", "iris-role", {}),
        _step("delete-replaced", "aws:iam/role:Role", "iris-role", {}),
        SimpleNamespace(resource_pre_event=None),
    ]  # fmt: skip
    plan = _engine(tmp_path, FakeStack(events), {}).preview(program, provider="aws", stage="dev")
    assert plan.kind == "pulumi"
    fn, role = plan.resources
    assert (fn.op, fn.name, fn.parent) == ("create", "iris-fn", "iris")
    assert fn.inputs["memory_size"] == 1024 and fn.unknowns == ("role",)
    assert (role.op, role.parent) == ("same", None)


def test_engine_wraps_pulumi_failures_in_deploy_error(tmp_path):
    with pytest.raises(DeployError, match="no credentials") as info:
        _engine(tmp_path, FakeStack(fail="up"), {}).up(program)
    assert "--debug" in info.value.hint


def test_debug_streams_pulumis_debug_log_and_keeps_the_whole_error(tmp_path):
    stack = FakeStack(fail="up")
    with pytest.raises(DeployError, match="no credentials") as info:
        _engine(tmp_path, stack, {}, debug=True).up(program)
    assert ("up", {"debug": True, "log_to_std_err": True}) in stack.calls
    assert "--debug" not in info.value.hint
    quiet = FakeStack()
    _engine(tmp_path, quiet, {}).preview(program, provider="aws", stage="dev")
    assert ("preview", {}) in quiet.calls


def test_missing_cli_is_provider_unavailable_pointing_to_offline_preview(tmp_path):
    def no_cli(**kwargs):
        raise FileNotFoundError("pulumi")

    engine = PulumiEngine("iris", "iris-dev", work_dir=tmp_path, stack_factory=no_cli)
    with pytest.raises(ProviderUnavailable) as info:
        engine.destroy()
    assert "Pulumi CLI" in info.value.message
    assert "get.pulumi.com" in info.value.hint and "slml preview" in info.value.hint
