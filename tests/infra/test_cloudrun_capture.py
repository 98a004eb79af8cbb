"""Cloud Run with a gs:// capture sink, under Pulumi's mocks: the setting in the
container's env, a service account of its own, and objectCreator on the bucket only
under the sink's prefix; without the sink, none of it."""

from __future__ import annotations

import json
from dataclasses import replace

from slml.config.sections import GcpConfig
from slml.engine import offline_plan
from slml.infra.capture_grant import gcs_prefix_condition, object_sink
from slml.infra.cloudrun import CloudRunModel, CloudRunSpec, capture_account_id
from tests.infra.test_cloudrun import SERVICE, built  # noqa: F401

ACCOUNT = "gcp:serviceaccount/account:Account"
BINDING = "gcp:storage/bucketIAMMember:BucketIAMMember"
CAPTURE = json.dumps({"sample": 0.5, "sink": "gs://cap-bucket/iris/prod/"})


def plan(image, env: dict[str, str]) -> dict[str, list]:
    spec = CloudRunSpec.from_config(GcpConfig(project="proj-1", region="europe-west1"),
                                    name="iris", stage="prod", image=image)  # fmt: skip
    spec = replace(spec, env=env)
    by_type: dict[str, list] = {}
    for r in offline_plan(lambda: CloudRunModel("iris-prod", spec), project="p", stack="s"):
        by_type.setdefault(r.type, []).append(r)
    return by_type


def test_a_gcs_sink_gets_object_creator_under_its_prefix_only(built) -> None:  # noqa: F811
    res = plan(built, {"SLML_CAPTURE": CAPTURE})
    (account,) = res[ACCOUNT]
    assert account.inputs["account_id"] == "iris-prod-slml"
    (binding,) = res[BINDING]
    assert binding.inputs["bucket"] == "cap-bucket"
    assert binding.inputs["role"] == "roles/storage.objectCreator"
    assert binding.inputs["condition"]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/cap-bucket/objects/iris/prod/")')
    template = res[SERVICE][0].inputs["template"]
    (container,) = template["containers"]
    env = {e["name"]: e["value"] for e in container["envs"]}
    assert json.loads(env["SLML_CAPTURE"])["sample"] == 0.5
    # the service runs as that account (known once created: unknown in a preview)
    assert template["service_account"] == "(known after deploy)"
    assert "member" in binding.unknowns  # serviceAccount:<that account's email>


def test_no_gcs_sink_no_account_no_binding(built) -> None:  # noqa: F811
    s3 = json.dumps({"sample": 1.0, "sink": "s3://b/p"})
    for env in ({}, {"SLML_CAPTURE": s3}):
        res = plan(built, env)
        assert ACCOUNT not in res and BINDING not in res
        assert "service_account" not in res[SERVICE][0].inputs["template"]


def test_helpers() -> None:
    assert object_sink(CAPTURE, "gs") == ("cap-bucket", "iris/prod")
    assert object_sink(CAPTURE, "s3") is None and object_sink(None, "gs") is None
    whole = gcs_prefix_condition("b", "")
    assert whole == 'resource.name.startsWith("projects/_/buckets/b/objects/")'
    long = capture_account_id("a" * 49)
    assert len(long) <= 30 and long.endswith("-slml")
    assert 6 <= len(capture_account_id("m")) <= 30
