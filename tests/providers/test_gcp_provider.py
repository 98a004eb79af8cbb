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
