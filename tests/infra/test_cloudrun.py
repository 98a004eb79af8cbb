"""``slml:gcp:CloudRunModel`` under Pulumi's mocks (the engine's offline plan), and its
pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml.config.sections import GcpConfig
from slml.engine import offline_plan
from slml.errors import ConfigError
from slml.infra.cloudrun import (
    TYPE,
    CloudRunModel,
    CloudRunSpec,
    container_env,
    is_public,
    service_name,
)
from slml.infra.image import ImageSource, image_tag, pinned_ref, registry_host

IAM_MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
SERVICE = "gcp:cloudrunv2/service:Service"


def plan_of(cfg: GcpConfig, image: ImageSource):
    spec = CloudRunSpec.from_config(cfg, name="iris", stage="dev", image=image)

    def program() -> None:
        CloudRunModel("iris-dev", spec)

    resources = offline_plan(program, project="iris", stack="dev")
    return {r.type: r for r in resources}, resources


@pytest.fixture
def built(tmp_path: Path) -> ImageSource:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return ImageSource(context=tmp_path, tag="d1-m2")


def test_service_properties_that_matter(built) -> None:
    cfg = GcpConfig(
        project="proj-1", region="europe-west1", cpu="2", memory="2Gi", min_instances=1,
        max_instances=7, concurrency=40, timeout=120, env={"A": "b"},
    )  # fmt: skip
    by_type, resources = plan_of(cfg, built)
    assert by_type[TYPE].parent is None
    assert all(r.parent == "iris-dev" for r in resources if r.type != TYPE)
    svc = by_type[SERVICE].inputs
    assert svc["deletion_protection"] is False
    assert svc["name"] == "iris-dev" and svc["location"] == "europe-west1"
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL"
    template = svc["template"]
    assert template["scaling"] == {"min_instance_count": 1, "max_instance_count": 7}
    assert template["max_instance_request_concurrency"] == 40
    assert template["timeout"] == "120s"
    (container,) = template["containers"]
    assert container["ports"] == {"container_port": 8080}  # one object, not a list
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert {e["name"]: e["value"] for e in container["envs"]} == {
        "A": "b",
        "SLML_MODEL_DIR": "/app/model",
        "SLML_MAX_CONCURRENCY": "256",  # never below concurrency (40 here)
    }
    assert container["image"] == "(known after deploy)"  # the pushed digest
    assert "template" in by_type[SERVICE].unknowns


def test_the_runtime_limit_follows_a_high_concurrency() -> None:
    from slml.infra.cloudrun import CloudRunSpec, container_env
    from slml.infra.image import ImageSource

    spec = CloudRunSpec(service="s", region="r", image=ImageSource(image_uri="i"),
                        concurrency=1000)
    assert container_env(spec)["SLML_MAX_CONCURRENCY"] == "1000"


def test_building_creates_the_registry_and_an_amd64_pushed_image(built) -> None:
    by_type, _ = plan_of(GcpConfig(project="proj-1"), built)
    repo = by_type["gcp:artifactregistry/repository:Repository"].inputs
    assert repo["format"] == "DOCKER" and repo["repository_id"] == "iris-dev"
    image = by_type["docker-build:index:Image"].inputs
    assert image["platforms"] == ["linux/amd64"] and image["push"] is True
    assert image["build_on_preview"] is False
    assert image["context"] == {"location": str(built.context)}
    assert image["tags"] == ["us-central1-docker.pkg.dev/proj-1/iris-dev/model:d1-m2"]
    # the registry credentials (an OAuth access token) stay a Pulumi secret
    assert image["registries"] == "[secret]"


def test_prebuilt_image_skips_registry_and_build() -> None:
    uri = "us-docker.pkg.dev/p/r/model@sha256:" + "a" * 64
    by_type, _ = plan_of(GcpConfig(), ImageSource(image_uri=uri))
    assert "docker-build:index:Image" not in by_type
    assert "gcp:artifactregistry/repository:Repository" not in by_type
    assert by_type[SERVICE].inputs["template"]["containers"][0]["image"] == uri


def test_no_public_invoker_unless_auth_none(built) -> None:
    by_type, _ = plan_of(GcpConfig(auth="iam"), built)
    assert IAM_MEMBER not in by_type
    by_type, _ = plan_of(GcpConfig(auth="none"), built)
    member = by_type[IAM_MEMBER].inputs
    assert member["role"] == "roles/run.invoker" and member["member"] == "allUsers"


def test_reserved_env_is_a_config_error() -> None:
    spec = CloudRunSpec.from_config(
        GcpConfig(env={"PORT": "1"}), name="a", stage="b", image=ImageSource(image_uri="x")
    )
    with pytest.raises(ConfigError, match=r"gcp\.env: PORT is set by Cloud Run"):
        container_env(spec)


def test_names_and_helpers() -> None:
    assert service_name("iris", "dev") == "iris-dev"
    assert service_name("9lives", "prod") == "m-9lives-prod"
    long = service_name("a" * 40, "production")
    assert len(long) <= 49 and not long.endswith("-")
    spec = CloudRunSpec(service="s", region="r", image=ImageSource(image_uri="x"), auth="iam")
    assert not is_public(spec)
    assert image_tag("ab" * 32, "cd" * 32) == "dababababab-mcdcdcdcdcd"
    assert registry_host("123.dkr.ecr.us-east-1.amazonaws.com/repo") == (
        "123.dkr.ecr.us-east-1.amazonaws.com"
    )
    assert pinned_ref("h/r", "sha256:00") == "h/r@sha256:00"
    with pytest.raises(ValueError, match="exactly one"):
        ImageSource()


# -- traffic among revisions, and GPUs ------------------------------------------------
def spec_plan(spec: CloudRunSpec):
    def program() -> None:
        CloudRunModel("iris-dev", spec)

    return {r.type: r for r in offline_plan(program, project="iris", stack="dev")}


def test_revisions_are_named_and_tagged_with_their_share(built) -> None:
    from dataclasses import replace

    from slml.infra.cloudrun import RevisionTraffic, revision_name

    spec = CloudRunSpec.from_config(GcpConfig(), name="iris", stage="dev", image=built)
    spec = replace(spec, revision=revision_name(spec.service, 4), traffic=(
        RevisionTraffic("iris-dev-v3", 90, "v3"), RevisionTraffic("iris-dev-v4", 10, "v4")))
    svc = spec_plan(spec)[SERVICE].inputs
    assert svc["template"]["revision"] == "iris-dev-v4"
    assert svc["traffics"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "iris-dev-v3",
         "percent": 90, "tag": "v3"},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "iris-dev-v4",
         "percent": 10, "tag": "v4"},
    ]  # fmt: skip


def test_a_shift_serves_the_recorded_image_and_keeps_the_registry(built) -> None:
    from dataclasses import replace

    spec = CloudRunSpec.from_config(GcpConfig(), name="iris", stage="dev", image=built)
    pinned = "us-central1-docker.pkg.dev/p/iris-dev/model@sha256:abc"
    by_type = spec_plan(replace(spec, pinned_image=pinned))
    (container,) = by_type[SERVICE].inputs["template"]["containers"]
    assert container["image"] == pinned
    assert "gcp:artifactregistry/repository:Repository" in by_type  # not deleted
    assert not any("docker-build" in t for t in by_type)  # nothing built


def test_gpu_sets_the_limit_the_accelerator_and_instance_billing(built) -> None:
    cfg = GcpConfig(gpu="nvidia-l4", cpu="4", memory="16Gi", gpu_zonal_redundancy=False)
    by_type, _ = plan_of(cfg, built)
    template = by_type[SERVICE].inputs["template"]
    (container,) = template["containers"]
    assert container["resources"]["limits"] == {
        "cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}  # fmt: skip
    assert container["resources"]["cpu_idle"] is False  # instance-based billing
    assert template["node_selector"] == {"accelerator": "nvidia-l4"}
    assert template["gpu_zonal_redundancy_disabled"] is True


def test_no_gpu_keys_without_a_gpu(built) -> None:
    by_type, _ = plan_of(GcpConfig(), built)
    template = by_type[SERVICE].inputs["template"]
    assert "node_selector" not in template and "gpu_zonal_redundancy_disabled" not in template
    assert "cpu_idle" not in template["containers"][0]["resources"]


@pytest.mark.parametrize(
    ("keys", "where", "words"),
    [({"cpu": "2", "memory": "16Gi"}, "cpu", "below the 4 vCPU"),
     ({"cpu": "4", "memory": "8Gi"}, "memory", "below the 16Gi"),
     ({}, "cpu", "below the 4 vCPU"),  # the defaults (1 vCPU, 1Gi) are checked too
     ({"cpu": "4", "memory": "16Gi", "gpu_count": 2}, "gpu_count", "less than or equal to 1")],
)  # fmt: skip
def test_gpu_below_the_platform_minimums_fails_naming_the_key(keys, where, words) -> None:
    from slml.config import parse_config

    body = "".join(f"  {k}: {v!r}\n" if isinstance(v, str) else f"  {k}: {v}\n"
                   for k, v in keys.items())  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config(f"name: iris\nmodel: m\ngcp:\n  gpu: nvidia-l4\n{body}", base_dir=Path("."))
    assert f"gcp.{where}: " in err.value.message and words in err.value.message


def test_memory_above_what_the_cpu_allows_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="above the 4Gi Cloud Run allows"):
        GcpConfig(cpu="1", memory="8Gi")
