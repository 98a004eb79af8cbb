"""``--provider gcp``: build + offline plan, the builder check, status from a real
``run_v2.Service`` message, and invoke over httpx with an ID token."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from google.cloud import run_v2

from slml.config import ProjectConfig
from slml.errors import DeployError, InvokeError, ProviderUnavailable
from slml.providers.base import NullReporter, ProviderContext
from slml.providers.container_ops import docker_problem
from slml.providers.gcp import GcpProvider
from slml.state import ProjectState

URL = "https://iris-dev-abc123-uc.a.run.app"


def make_ctx(tmp_path: Path, artifact: Path, **gcp) -> ProviderContext:
    config = ProjectConfig(
        name="iris", model=artifact, gcp={"project": "proj-1", **gcp}, provider="gcp"
    )
    return ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())


def record(ctx: ProviderContext) -> None:
    outputs = {"url": URL, "service_name": "iris-dev", "project": "proj-1", "region": "us-central1"}
    ctx.state.write_record("dev", "gcp", {"url": URL, "version": 3, "outputs": outputs})


def test_build_then_offline_plan(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    provider = GcpProvider(cli_available=lambda: False)
    bundle = provider.build(ctx=ctx)
    assert (bundle.path / "Dockerfile").is_file() and "model_tar" not in bundle.files
    plan = provider.plan(ctx=ctx, bundle=bundle)
    assert plan.kind == "offline" and plan.warnings == ()
    types = [r.type for r in plan.resources]
    assert "gcp:cloudrunv2/service:Service" in types
    assert "gcp:cloudrunv2/serviceIamMember:ServiceIamMember" not in types
    image = next(r for r in plan.resources if r.type == "docker-build:index:Image")
    assert image.inputs["context"] == {"location": str(bundle.path)}


def test_public_service_is_warned_about(tmp_path, iris_artifact) -> None:
    (warning,) = GcpProvider().warnings(make_ctx(tmp_path, iris_artifact, auth="none"))
    assert "PUBLIC" in warning


def test_deploy_without_a_builder_says_what_to_do(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    provider = GcpProvider(
        cli_available=lambda: True, docker_check=lambda: "no Docker daemon answers"
    )
    bundle = provider.build(ctx=ctx)
    with pytest.raises(ProviderUnavailable) as err:
        provider.deploy(ctx=ctx, bundle=bundle)
    assert "no Docker daemon answers" in err.value.message
    assert "gcp.image_uri" in err.value.hint and "Docker" in err.value.hint


def test_prebuilt_image_needs_no_builder(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact, image_uri="us-docker.pkg.dev/p/r/m:1")
    provider = GcpProvider(cli_available=lambda: False, docker_check=lambda: "never asked")
    bundle = provider.build(ctx=ctx)
    with pytest.raises(ProviderUnavailable, match="Pulumi CLI"):
        provider.deploy(ctx=ctx, bundle=bundle)


def test_docker_problem_reports_missing_cli_and_daemon() -> None:
    assert docker_problem(which=lambda _: None) == "the docker CLI is not installed"

    def down(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "Cannot connect to the Docker daemon")

    assert "Cannot connect" in docker_problem(which=lambda _: "/usr/bin/docker", runner=down)

    def up(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 0, "28.2.2\n", "")

    assert docker_problem(which=lambda _: "/usr/bin/docker", runner=up) is None


class FakeServicesClient:
    def __init__(self) -> None:
        self.names: list[str] = []

    def get_service(self, *, name: str) -> run_v2.Service:
        self.names.append(name)
        return run_v2.Service(
            name=name,
            uri=URL,
            latest_ready_revision=f"{name}/revisions/iris-dev-00003-xyz",
            traffic_statuses=[
                run_v2.TrafficTargetStatus(
                    type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST,
                    percent=100,
                )
            ],
            terminal_condition=run_v2.Condition(
                type_="Ready", state=run_v2.Condition.State.CONDITION_SUCCEEDED
            ),
        )


def test_status_reads_the_service(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    record(ctx)
    fake = FakeServicesClient()
    status = GcpProvider(services_client=lambda: fake).status(ctx=ctx)
    assert fake.names == ["projects/proj-1/locations/us-central1/services/iris-dev"]
    assert status.state == "running" and status.url == URL and status.version == 3
    assert status.details["latest_ready_revision"] == "iris-dev-00003-xyz"
    assert status.details["traffic"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "revision": "", "percent": 100}
    ]


def transport(seen: list[httpx.Request], status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"predictions": [0, 2, 1]})

    return httpx.MockTransport(handler)


def test_invoke_with_iam_sends_an_id_token_for_the_url(tmp_path, iris_artifact, iris_rows) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    record(ctx)
    seen: list[httpx.Request] = []
    audiences: list[str] = []

    def tokens(audience: str) -> str:
        audiences.append(audience)
        return "id-token-1"

    provider = GcpProvider(token_fetcher=tokens, transport=transport(seen))
    answer = provider.invoke(ctx=ctx, payload={"instances": iris_rows})
    assert answer == {"predictions": [0, 2, 1]}
    assert audiences == [URL]
    (request,) = seen
    assert str(request.url) == f"{URL}/predict"
    assert request.headers["authorization"] == "Bearer id-token-1"
    assert json.loads(request.content) == {"instances": iris_rows}


def test_invoke_public_sends_no_token(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact, auth="none")
    record(ctx)
    seen: list[httpx.Request] = []

    def no_tokens(audience: str) -> str:
        raise AssertionError("a public service needs no token")

    GcpProvider(token_fetcher=no_tokens, transport=transport(seen)).invoke(ctx=ctx, payload={})
    assert "authorization" not in seen[0].headers


def test_invoke_refused_says_which_role_is_missing(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    record(ctx)
    provider = GcpProvider(token_fetcher=lambda a: "t", transport=transport([], status=403))
    with pytest.raises(InvokeError, match=r"run\.invoker"):
        provider.invoke(ctx=ctx, payload={})


def test_logs_query_the_recorded_service(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact)
    record(ctx)
    seen: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        entry = {"insertId": "a", "timestamp": "2024-05-01T10:00:00Z",
                 "jsonPayload": {"event": "request", "status": 200}}  # fmt: skip
        return httpx.Response(200, json={"entries": [entry]})

    provider = GcpProvider(transport=httpx.MockTransport(handle), logging_token=lambda: "t")
    assert list(provider.logs(ctx=ctx, lines=5)) == ['{"event":"request","status":200}']
    assert seen[0]["resourceNames"] == ["projects/proj-1"] and seen[0]["pageSize"] == 5
    assert 'service_name="iris-dev"' in seen[0]["filter"]
    assert 'location="us-central1"' in seen[0]["filter"]


def test_logs_without_a_known_project_say_where_to_set_it(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact, project=None)
    outputs = {"url": URL, "service_name": "iris-dev", "region": "us-central1"}
    ctx.state.write_record("dev", "gcp", {"url": URL, "version": 1, "outputs": outputs})
    with pytest.raises(DeployError) as err:
        GcpProvider(logging_token=lambda: "t").logs(ctx=ctx)
    assert "gcp.project" in err.value.hint


# -- rollouts: revision traffic in the plan, shadow refused, shift; GPUs in the preview --
def fake_bundle(tmp_path: Path):
    from slml.providers.base import Bundle, SizeReport

    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    return Bundle(provider="gcp", path=context, lock_hash="l" * 8, model_sha256="m" * 8,
                  python_version="3.11", platform="linux/amd64",
                  size=SizeReport(unzipped=1))  # fmt: skip


def rollout_ctx(tmp_path: Path, artifact: Path, mode: str = "canary", **gcp) -> ProviderContext:
    from dataclasses import replace

    from slml.rollout import LiveVersion, RolloutRequest

    live = (LiveVersion(3, 100.0, "primary", "iris-dev-v3"),)
    ctx = make_ctx(tmp_path, artifact, **gcp)
    ctx.state.append_history({"stage": "dev", "provider": "gcp", "event": "deploy", "version": 3})
    return replace(ctx, rollout=RolloutRequest(mode, 10, live))  # type: ignore[arg-type]


def test_preview_of_a_canary_shows_the_revision_traffic(tmp_path, iris_artifact) -> None:
    ctx = rollout_ctx(tmp_path, iris_artifact)
    plan = GcpProvider(cli_available=lambda: False).plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    svc = next(r for r in plan.resources if r.type == "gcp:cloudrunv2/service:Service")
    assert svc.inputs["template"]["revision"] == "iris-dev-v4"
    assert [(t["revision"], t["percent"], t["tag"]) for t in svc.inputs["traffics"]] == [
        ("iris-dev-v3", 90, "v3"), ("iris-dev-v4", 10, "v4")]  # fmt: skip
    assert ("traffic: revisions iris-dev-v3 90% primary (tag v3), "
            "iris-dev-v4 10% canary (tag v4)") in plan.notes  # fmt: skip


def test_shadow_on_cloud_run_is_refused_with_the_reason(tmp_path, iris_artifact) -> None:
    ctx = rollout_ctx(tmp_path, iris_artifact, mode="shadow")
    with pytest.raises(ProviderUnavailable, match="cannot send a copy") as err:
        GcpProvider(cli_available=lambda: False).plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    assert "tagged URL" in (err.value.hint or "")


def test_a_canary_share_must_be_a_whole_percent(tmp_path, iris_artifact) -> None:
    from dataclasses import replace

    ctx = rollout_ctx(tmp_path, iris_artifact)
    ctx = replace(ctx, rollout=replace(ctx.rollout, percent=12.5))
    with pytest.raises(DeployError, match="whole percents"):
        GcpProvider(cli_available=lambda: False).plan(ctx=ctx, bundle=fake_bundle(tmp_path))


def test_promote_by_shift_reapplies_the_template_with_new_percents(
    tmp_path, iris_artifact, mocked_engine
) -> None:
    from slml.rollout import LiveVersion

    ctx = rollout_ctx(tmp_path, iris_artifact)
    image = "us-central1-docker.pkg.dev/proj-1/iris-dev/model@sha256:abc"
    traffic = [{"version": 3, "percent": 90.0, "role": "primary", "ref": "iris-dev-v3"},
               {"version": 4, "percent": 10.0, "role": "canary", "ref": "iris-dev-v4"}]
    ctx.state.write_record("dev", "gcp", {"url": URL, "version": 4, "outputs": {
        "url": URL, "image": image, "traffic": traffic}})  # fmt: skip
    from slml.providers.rollout_base import keep_bundle

    provider = GcpProvider(engine_factory=mocked_engine, cli_available=lambda: True)
    keep_bundle(provider.kept_dir(ctx), fake_bundle(tmp_path))
    mocked_engine.outputs = {"url": URL}
    result = provider.shift(ctx=ctx, traffic=(LiveVersion(4, 100.0, "primary"),))
    svc = mocked_engine.resource("gcp:cloudrunv2/service:Service")
    assert svc.inputs["template"]["revision"] == "iris-dev-v4"  # the deployed one: no new
    assert svc.inputs["template"]["containers"][0]["image"] == image
    assert svc.inputs["traffics"] == [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                                       "revision": "iris-dev-v4", "percent": 100, "tag": "v4"}]
    assert result.traffic == (LiveVersion(4, 100.0, "primary", "iris-dev-v4"),)
    assert result.version == 4


def test_preview_with_a_gpu_shows_the_gpu_resources(tmp_path, iris_artifact) -> None:
    ctx = make_ctx(tmp_path, iris_artifact, gpu="nvidia-l4", cpu="8", memory="32Gi")
    plan = GcpProvider(cli_available=lambda: False).plan(ctx=ctx, bundle=fake_bundle(tmp_path))
    template = next(r for r in plan.resources if r.type.endswith("service:Service")).inputs[
        "template"]  # fmt: skip
    assert template["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert template["containers"][0]["resources"]["cpu_idle"] is False
    assert template["node_selector"] == {"accelerator": "nvidia-l4"}
    assert template["gpu_zonal_redundancy_disabled"] is False
    assert ("gpu: 1 x nvidia-l4 per instance (limit nvidia.com/gpu, node_selector.accelerator "
            "nvidia-l4), 8 vCPU / 32Gi, CPU always allocated (instance-based billing), GPU "
            "zonal redundancy on") in plan.notes  # fmt: skip


class CanaryServicesClient:
    """A service whose traffic is split between two tagged revisions."""

    def get_service(self, *, name: str) -> run_v2.Service:
        by_revision = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
        return run_v2.Service(
            name=name, uri=URL, latest_ready_revision=f"{name}/revisions/iris-dev-v4",
            traffic_statuses=[
                run_v2.TrafficTargetStatus(type_=by_revision, revision="iris-dev-v3",
                                           percent=90, tag="v3", uri="https://v3---x.run.app"),
                run_v2.TrafficTargetStatus(type_=by_revision, revision="iris-dev-v4",
                                           percent=10, tag="v4", uri="https://v4---x.run.app"),
            ],
            terminal_condition=run_v2.Condition(
                type_="Ready", state=run_v2.Condition.State.CONDITION_SUCCEEDED),
        )  # fmt: skip


def test_status_lists_each_live_revision_with_its_own_url_and_share(tmp_path, iris_artifact):
    from slml.rollout import LiveVersion

    ctx = make_ctx(tmp_path, iris_artifact)
    traffic = [{"version": 3, "percent": 90.0, "role": "primary", "ref": "iris-dev-v3"},
               {"version": 4, "percent": 10.0, "role": "canary", "ref": "iris-dev-v4"}]
    ctx.state.write_record("dev", "gcp", {"url": URL, "version": 4, "outputs": {
        "url": URL, "service_name": "iris-dev", "project": "proj-1", "region": "us-central1",
        "traffic": traffic}})  # fmt: skip
    status = GcpProvider(services_client=CanaryServicesClient).status(ctx=ctx)
    assert [(t["tag"], t["percent"], t["uri"]) for t in status.details["traffic"]] == [
        ("v3", 90, "https://v3---x.run.app"), ("v4", 10, "https://v4---x.run.app")]
    assert status.traffic == (LiveVersion(3, 90.0, "primary", "iris-dev-v3"),
                              LiveVersion(4, 10.0, "canary", "iris-dev-v4"))
