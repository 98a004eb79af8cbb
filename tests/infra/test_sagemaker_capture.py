"""`capture:` with an s3:// sink maps onto SageMaker's native data capture on instance
endpoints (under Pulumi's mocks: the endpoint configuration and the role's grant), and
is refused with the reason where it cannot hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from slml.config.sections import CaptureConfig, DataCaptureConfig, SageMakerConfig
from slml.engine import offline_plan
from slml.errors import ConfigError
from slml.infra.sagemaker import SageMakerModel, SageMakerSpec, s3_arn, with_project_capture
from tests.infra.test_sagemaker import CONFIG, SHA, built  # noqa: F401

INSTANCE = {"instance_type": "ml.m5.large"}


def spec_of(built, **cfg) -> SageMakerSpec:  # noqa: F811
    image, tar = built
    return SageMakerSpec.from_config(SageMakerConfig(**cfg), name="iris", stage="prod",
                                     image=image, model_tar=tar, sha=SHA)  # fmt: skip


def plan(spec: SageMakerSpec) -> dict:
    resources = offline_plan(lambda: SageMakerModel("iris-prod", spec), project="p", stack="s")
    return {r.type: r for r in resources}


def test_an_s3_sink_becomes_native_data_capture(built) -> None:  # noqa: F811
    capture = CaptureConfig(sample=0.25, inputs_only=True, sink="s3://cap/iris/prod/")
    spec = with_project_capture(spec_of(built, **INSTANCE), capture)
    by_type = plan(spec)
    dc = by_type[CONFIG].inputs["data_capture_config"]
    assert dc["destination_s3_uri"] == "s3://cap/iris/prod"
    assert dc["initial_sampling_percentage"] == 25
    assert [o["capture_mode"] for o in dc["capture_options"]] == ["Input"]
    # the role may put objects under that prefix only (known once the role exists)
    assert s3_arn(spec.capture_s3_uri) == "arn:aws:s3:::cap/iris/prod"


def test_explicit_data_capture_wins_and_no_sink_changes_nothing(built) -> None:  # noqa: F811
    explicit = spec_of(built, **INSTANCE, data_capture=DataCaptureConfig(
        enabled=True, s3_uri="s3://logs/cap", sampling_percentage=5))  # fmt: skip
    capture = CaptureConfig(sample=1.0, sink="s3://other/p")
    assert with_project_capture(explicit, capture) == explicit
    plain = spec_of(built, **INSTANCE)
    assert with_project_capture(plain, CaptureConfig()) == plain
    assert with_project_capture(plain, None) == plain


def test_refused_where_native_capture_cannot_hold(built) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="serverless") as err:
        with_project_capture(spec_of(built), CaptureConfig(sink="s3://cap/p"))
    assert "instance_type" in (err.value.hint or "")
    with pytest.raises(ConfigError, match="S3 only"):
        with_project_capture(spec_of(built, **INSTANCE), CaptureConfig(sink="gs://cap/p"))
    assert replace(spec_of(built, **INSTANCE)).capture is False
