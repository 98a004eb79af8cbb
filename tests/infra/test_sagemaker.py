"""``slml:aws:SageMakerModel`` under Pulumi's mocks, and its pure helpers (the
least-privilege role policy above all)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slml.config.sections import DataCaptureConfig, SageMakerConfig
from slml.engine import offline_plan
from slml.errors import ConfigError
from slml.infra.image import ImageSource
from slml.infra.sagemaker import (
    TYPE,
    SageMakerModel,
    SageMakerSpec,
    check_variant,
    ecr_repository_arn,
    endpoint_name,
    execution_role_policy,
    invocations_url,
    model_key,
    trust_policy,
)

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SHA = "ab" * 32


@pytest.fixture
def built(tmp_path: Path) -> tuple[ImageSource, Path]:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(b"not really a tarball")
    return ImageSource(context=tmp_path / "ctx", tag="t1"), tar


def plan_of(cfg: SageMakerConfig, image: ImageSource, tar: Path):
    spec = SageMakerSpec.from_config(
        cfg, name="iris", stage="dev", image=image, model_tar=tar, sha=SHA
    )

    def program() -> None:
        SageMakerModel("iris-dev", spec)

    resources = offline_plan(program, project="iris", stack="dev")
    return {r.type: r for r in resources}, resources


def test_serverless_by_default_with_configured_bounds(built) -> None:
    image, tar = built
    by_type, resources = plan_of(SageMakerConfig(memory=3072, max_concurrency=12), image, tar)
    assert by_type[TYPE].parent is None
    assert all(r.parent == "iris-dev" for r in resources if r.type != TYPE)
    (variant,) = by_type[CONFIG].inputs["production_variants"]
    assert variant["serverless_config"] == {"memory_size_in_mb": 3072, "max_concurrency": 12}
    assert "instance_type" not in variant and "initial_instance_count" not in variant
    assert by_type[CONFIG].inputs.get("data_capture_config") is None
    endpoint = by_type["aws:sagemaker/endpoint:Endpoint"].inputs
    assert endpoint["name"] == "iris-dev"


def test_model_container_data_and_environment(built) -> None:
    image, tar = built
    by_type, _ = plan_of(SageMakerConfig(env={"A": "1"}), image, tar)
    container = by_type["aws:sagemaker/model:Model"].inputs["primary_container"]
    assert container["environment"] == {"A": "1", "SLML_MODEL_DIR": "/opt/ml/model"}
    obj = by_type["aws:s3/bucketObjectv2:BucketObjectv2"].inputs
    assert obj["key"] == model_key(SHA) and obj["source"] == f"FileAsset({tar})"
    repo = by_type["aws:ecr/repository:Repository"].inputs
    assert repo["force_delete"] is True and repo["name"] == "iris-dev"
    image_inputs = by_type["docker-build:index:Image"].inputs
    assert image_inputs["platforms"] == ["linux/amd64"] and image_inputs["push"] is True
    block = by_type["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"].inputs
    assert block["block_public_acls"] and block["restrict_public_buckets"]


def test_instance_backed_variant_with_data_capture(built) -> None:
    image, tar = built
    cfg = SageMakerConfig(
        instance_type="ml.m5.large", instance_count=2,
        data_capture=DataCaptureConfig(
            enabled=True, s3_uri="s3://logs/cap", sampling_percentage=20
        ),
    )  # fmt: skip
    by_type, _ = plan_of(cfg, image, tar)
    config = by_type[CONFIG].inputs
    (variant,) = config["production_variants"]
    assert variant["instance_type"] == "ml.m5.large" and variant["initial_instance_count"] == 2
    assert "serverless_config" not in variant
    capture = config["data_capture_config"]
    assert capture["enable_capture"] is True and capture["destination_s3_uri"] == "s3://logs/cap"
    assert capture["initial_sampling_percentage"] == 20
    assert [o["capture_mode"] for o in capture["capture_options"]] == ["Input", "Output"]


def test_role_trusts_only_sagemaker(built) -> None:
    image, tar = built
    by_type, _ = plan_of(SageMakerConfig(), image, tar)
    role = by_type["aws:iam/role:Role"].inputs
    assert json.loads(role["assume_role_policy"]) == trust_policy()
    assert trust_policy()["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "aws:iam/rolePolicyAttachment:RolePolicyAttachment" not in by_type  # no managed policy


def test_prebuilt_image_needs_no_registry_or_build() -> None:
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/iris:v3"
    spec = SageMakerSpec(
        endpoint="iris-dev", region="eu-west-1", image=ImageSource(image_uri=uri),
        model_tar=Path("/x/model.tar.gz"), model_sha256=SHA,
    )  # fmt: skip
    resources = offline_plan(lambda: SageMakerModel("iris-dev", spec), project="p", stack="s")
    by_type = {r.type: r for r in resources}
    assert "aws:ecr/repository:Repository" not in by_type
    assert "docker-build:index:Image" not in by_type
    assert by_type["aws:sagemaker/model:Model"].inputs["primary_container"]["image"] == uri


def test_policy_is_least_privilege() -> None:
    policy = execution_role_policy(
        repository_arn="arn:aws:ecr:us-east-1:1:repository/iris-dev",
        model_object_arn="arn:aws:s3:::bkt/models/ab/model.tar.gz",
        region="us-east-1",
        endpoint="iris-dev",
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"EcrToken", "EcrPull", "ModelData", "Logs", "Metrics"}
    assert by_sid["ModelData"] == {
        "Sid": "ModelData", "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bkt/models/ab/model.tar.gz",
    }  # fmt: skip
    assert by_sid["EcrPull"]["Resource"] == "arn:aws:ecr:us-east-1:1:repository/iris-dev"
    assert all(not a.endswith("*") for s in policy["Statement"] for a in _actions(s))
    wildcard = {s["Sid"] for s in policy["Statement"] if s["Resource"] == "*"}
    assert wildcard == {"EcrToken", "Metrics"}  # AWS supports no resource ARN for these
    assert "/aws/sagemaker/Endpoints/iris-dev" in by_sid["Logs"]["Resource"][0]
    assert not any(s["Action"] == "s3:PutObject" for s in policy["Statement"])
    with_capture = execution_role_policy(
        repository_arn="r", model_object_arn="o", region="us-east-1", endpoint="e",
        capture_prefix_arn="arn:aws:s3:::logs/cap",
    )  # fmt: skip
    (capture,) = [s for s in with_capture["Statement"] if s["Sid"] == "DataCapture"]
    assert capture["Action"] == "s3:PutObject" and capture["Resource"] == "arn:aws:s3:::logs/cap/*"


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_variant_bounds_are_checked() -> None:
    spec = SageMakerSpec(
        endpoint="e", region="r", image=ImageSource(image_uri="x"), model_tar=Path("m"),
        model_sha256=SHA,
    )  # fmt: skip
    check_variant(spec)
    for bad, match in [
        ({"memory": 7168}, "sagemaker.memory: 7168"),
        ({"memory": 1500}, "sagemaker.memory: 1500"),
        ({"max_concurrency": 201}, "sagemaker.max_concurrency: 201"),
        ({"capture": True}, "needs an instance-backed endpoint"),
    ]:
        with pytest.raises(ConfigError, match=match):
            check_variant(SageMakerSpec(**{**spec.__dict__, **bad}))
    check_variant(SageMakerSpec(**{**spec.__dict__, "instance_type": "ml.m5.large"}))


def test_helpers() -> None:
    assert endpoint_name("iris", "dev") == "iris-dev"
    assert len(endpoint_name("a" * 60, "production")) <= 63
    assert invocations_url("eu-west-1", "iris-dev") == (
        "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris-dev/invocations"
    )
    assert ecr_repository_arn("123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b@sha256:00") == (
        "arn:aws:ecr:us-east-1:123456789012:repository/a/b"
    )
    with pytest.raises(ConfigError, match="not an ECR image"):
        ecr_repository_arn("docker.io/library/python:3.11")


# -- variants: weights for a canary, a shadow variant, older versions' models ------------
OLD_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-dev@sha256:old"
OLD_DATA = "s3://bkt/models/cdcdcdcdcdcdcdcd/model.tar.gz"


def variants_plan(built, variants, **cfg):
    from dataclasses import replace

    image, tar = built
    config = SageMakerConfig(instance_type="ml.m5.large", **cfg)
    spec = SageMakerSpec.from_config(config, name="iris", stage="dev", image=image,
                                     model_tar=tar, sha=SHA)  # fmt: skip
    spec = replace(spec, variants=variants)

    def program() -> None:
        SageMakerModel("iris-dev", spec)

    return offline_plan(program, project="iris", stack="dev")


def test_a_canary_is_two_weighted_production_variants_with_their_own_models(built) -> None:
    from slml.infra.sagemaker import Variant

    resources = variants_plan(built, (
        Variant(3, 0.9, image=OLD_IMAGE, model_data_url=OLD_DATA), Variant(4, 0.1)))
    models = {r.name: r.inputs for r in resources if r.type == "aws:sagemaker/model:Model"}
    assert set(models) == {"iris-dev-model-v3", "iris-dev-model-v4"}
    old = models["iris-dev-model-v3"]["primary_container"]
    assert old["image"] == OLD_IMAGE and old["model_data_url"] == OLD_DATA
    config = next(r for r in resources if r.type == CONFIG).inputs
    assert [(v["variant_name"], v["initial_variant_weight"])
            for v in config["production_variants"]] == [("v3", 0.9), ("v4", 0.1)]
    assert "shadow_production_variants" not in config
    obj = next(r for r in resources if r.type == "aws:s3/bucketObjectv2:BucketObjectv2")
    assert obj.inputs["key"] == model_key(SHA)


def test_a_shadow_is_a_shadow_variant_beside_one_production_variant(built) -> None:
    from slml.infra.sagemaker import Variant

    resources = variants_plan(
        built, (Variant(3, 1.0, image=OLD_IMAGE, model_data_url=OLD_DATA),
                Variant(4, 1.0, shadow=True)),
        data_capture=DataCaptureConfig(enabled=True, s3_uri="s3://logs/cap"),
    )  # fmt: skip
    config = next(r for r in resources if r.type == CONFIG).inputs
    assert [v["variant_name"] for v in config["production_variants"]] == ["v3"]
    (shadow,) = config["shadow_production_variants"]
    assert shadow["variant_name"] == "v4" and shadow["initial_variant_weight"] == 1.0
    assert shadow["instance_type"] == "ml.m5.large"
    assert config["data_capture_config"]["destination_s3_uri"] == "s3://logs/cap"


def test_the_role_reads_every_live_versions_model_object() -> None:
    policy = execution_role_policy(
        repository_arn="r", region="us-east-1", endpoint="e",
        model_object_arn=["arn:aws:s3:::b/models/new/model.tar.gz",
                          "arn:aws:s3:::b/models/old/model.tar.gz"],
    )  # fmt: skip
    data = next(s for s in policy["Statement"] if s["Sid"] == "ModelData")
    assert data["Resource"] == ["arn:aws:s3:::b/models/new/model.tar.gz",
                                "arn:aws:s3:::b/models/old/model.tar.gz"]  # fmt: skip


def test_serverless_refuses_several_variants_and_shadows(built) -> None:
    from dataclasses import replace

    from slml.infra.sagemaker import Variant

    image, tar = built
    spec = SageMakerSpec.from_config(SageMakerConfig(), name="iris", stage="dev", image=image,
                                     model_tar=tar, sha=SHA)  # fmt: skip
    spec = replace(spec, variants=(Variant(3, 0.9, image=OLD_IMAGE, model_data_url=OLD_DATA),
                                   Variant(4, 0.1)))  # fmt: skip
    with pytest.raises(ConfigError, match="serves one production variant and no shadow"):
        check_variant(spec)


def test_a_shadow_beside_a_canary_is_refused(built) -> None:
    from slml.infra.sagemaker import Variant

    with pytest.raises(ConfigError, match="exactly one production and one shadow"):
        variants_plan(built, (Variant(2, 0.5, image=OLD_IMAGE, model_data_url=OLD_DATA),
                              Variant(3, 0.5, image=OLD_IMAGE, model_data_url=OLD_DATA),
                              Variant(4, 1.0, shadow=True)))  # fmt: skip
