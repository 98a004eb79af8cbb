"""Typed stack outputs: each target reads its recorded outputs as fields."""

from __future__ import annotations

import pytest

from slml.errors import DeployError
from slml.ledger import StackOutputs
from slml.providers.outputs import AwsOutputs, AzureOutputs, GcpOutputs, SageMakerOutputs


def test_a_record_reads_as_its_targets_fields_and_keeps_the_rest() -> None:
    record = {"version": 3, "outputs": {
        "url": "https://svc-abc.a.run.app", "service_name": "iris-dev", "project": "p1",
        "region": "europe-west1", "revision": "iris-dev-v3", "new_output": 7,
        "traffic": [{"version": 3, "percent": 90.0, "role": "primary", "ref": "iris-dev-v3"},
                    {"version": 4, "percent": 10.0, "role": "canary", "ref": "iris-dev-v4"}],
        "versions": {"3": "iris-dev-v3"}}}  # fmt: skip
    out = GcpOutputs.of(record)
    assert (out.service_name, out.project, out.revision) == ("iris-dev", "p1", "iris-dev-v3")
    assert out.service_path(out.project) == "projects/p1/locations/europe-west1/services/iris-dev"
    assert [(v.version, v.percent, v.role) for v in out.live()] == [
        (3, 90.0, "primary"), (4, 10.0, "canary")]
    assert out.versions == {"3": "iris-dev-v3"} and out.model_extra == {"new_output": 7}


def test_no_record_or_an_older_one_takes_defaults() -> None:
    assert AwsOutputs.of(None) == AwsOutputs()
    old = AzureOutputs.of({"outputs": {"url": "https://x.azurewebsites.net"}})
    assert old.url.endswith("azurewebsites.net") and old.workspace_id is None
    assert SageMakerOutputs.of({"outputs": None}).models == {}


def test_a_missing_output_that_is_needed_says_what_to_do() -> None:
    with pytest.raises(DeployError, match="no endpoint_name output") as info:
        SageMakerOutputs.of({"outputs": {}}).need("endpoint_name")
    assert "slml deploy" in (info.value.hint or "")


@pytest.mark.parametrize("outputs", [
    {"traffic": [{"version": "three", "percent": 100, "role": "primary"}]},
    {"url": ["not", "a", "string"]},
    "not an object",
])  # fmt: skip
def test_a_hand_edited_output_of_the_wrong_type_is_a_clear_error(outputs: object) -> None:
    with pytest.raises(DeployError, match=r"recorded stack outputs? .*unexpected shape"):
        StackOutputs.of({"outputs": outputs})
