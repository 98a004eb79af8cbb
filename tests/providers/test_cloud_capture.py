"""`capture:` with a cloud sink reaches Cloud Run's and Azure's service env in the plan
(as it does Lambda's), and the bundle then requires the sink's SDK, only then."""

from __future__ import annotations

import json
from pathlib import Path

from slml.capture import requirements_with_sink, sink_scheme
from slml.config import parse_config
from slml.providers.gcp import GcpProvider
from tests.infra.test_azure_function_model import DeployedMocks, settings_of
from tests.providers.test_azure_provider import Azure, provider
from tests.providers.test_azure_provider import bundle as azure_bundle
from tests.providers.test_azure_provider import context as azure_context
from tests.providers.test_gcp_provider import fake_bundle, make_ctx

GCS = "capture:\n  sample: 0.25\n  sink: gs://cap-bucket/iris\n"


def _config(tmp_path: Path, extra: str = ""):
    return parse_config(f"name: iris\nmodel: model\n{extra}", base_dir=tmp_path)


def test_cloud_run_plan_has_the_capture_env_and_grant(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    ctx = type(ctx)(config=ctx.config.model_copy(update={"capture": _config(
        tmp_path, GCS).capture}), state=ctx.state, reporter=ctx.reporter)  # fmt: skip
    plan = GcpProvider(cli_available=lambda: False).plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    svc = next(r for r in plan.resources if r.type == "gcp:cloudrunv2/service:Service")
    envs = {e["name"]: e["value"] for e in svc.inputs["template"]["containers"][0]["envs"]}
    setting = json.loads(envs["SLML_CAPTURE"])
    assert (setting["sample"], setting["sink"]) == (0.25, "gs://cap-bucket/iris")
    types = {r.type for r in plan.resources}
    assert "gcp:storage/bucketIAMMember:BucketIAMMember" in types


def _azure_inputs(program) -> dict[str, dict]:
    """Every resource's inputs when the provider's program runs as a deploy would
    (under DeployedMocks, so secret app settings can be read back)."""
    import contextvars

    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    mocks = DeployedMocks()

    def run() -> None:
        settings.reset_options(project="iris", stack="dev", preview=False)
        pulumi.runtime.set_mocks(mocks, project="iris", stack="dev", preview=False)
        _sync_await(run_pulumi_func(program))

    contextvars.copy_context().run(run)
    return mocks.inputs


def test_azure_app_settings_carry_the_capture_setting(tmp_path) -> None:
    ctx = azure_context(tmp_path, "capture:\n  sample: 0.5\n  sink: az://captures/iris\n")
    program = provider(Azure()).program(ctx=ctx, bundle=azure_bundle(tmp_path))
    _, settings = settings_of(_azure_inputs(program))
    setting = json.loads(settings["SLML_CAPTURE"])
    assert (setting["sample"], setting["sink"]) == (0.5, "az://captures/iris")
    plan = provider(Azure()).plan(ctx=ctx, bundle=azure_bundle(tmp_path))
    names = [r.inputs.get("container_name") for r in plan.resources
             if r.type == "azure-native:storage:BlobContainer"]  # fmt: skip
    assert "captures" in names


def test_no_capture_no_setting_on_azure(tmp_path) -> None:
    program = provider(Azure()).program(ctx=azure_context(tmp_path), bundle=azure_bundle(tmp_path))
    _, settings = settings_of(_azure_inputs(program))
    assert "SLML_CAPTURE" not in settings


def test_the_sink_sdk_joins_the_requirements_only_for_its_scheme(tmp_path) -> None:
    assert requirements_with_sink(_config(tmp_path)).add == []
    assert sink_scheme(_config(tmp_path)) is None
    gcs = requirements_with_sink(_config(tmp_path, GCS))
    assert gcs.add == ["google-cloud-storage>=2.14"]
    az = requirements_with_sink(_config(tmp_path, "capture:\n  sink: az://c/p\n"))
    assert az.add == ["azure-storage-blob>=12.19"]
    s3 = requirements_with_sink(_config(tmp_path, "capture:\n  sink: s3://b/p\n"))
    assert s3.add == []  # boto3: already on every AWS target
    pinned = _config(tmp_path, GCS + "requirements:\n  add: ['google-cloud-storage==3.1']\n")
    assert requirements_with_sink(pinned).add == ["google-cloud-storage==3.1"]  # theirs kept
