"""Azure with an az:// capture sink, under Pulumi's mocks: the sink's private container
is created in the app's own storage account (where the runtime's connection string
writes), unless the user points AZURE_STORAGE_CONNECTION_STRING elsewhere."""

from __future__ import annotations

import json

from tests.infra.test_azure_function_model import package, plan_of  # noqa: F401

CONTAINER = "azure-native:storage:BlobContainer"
CAPTURE = json.dumps({"sample": 1.0, "sink": "az://captures/iris/prod"})


def containers(resources) -> dict[str, dict]:
    return {r.inputs["container_name"]: r.inputs for r in resources if r.type == CONTAINER}


def test_an_az_sink_gets_its_private_container_in_the_apps_account(package) -> None:  # noqa: F811
    _, resources = plan_of(package, env={"SLML_CAPTURE": CAPTURE})
    found = containers(resources)
    assert set(found) == {"slml-packages", "captures"}
    assert found["captures"]["public_access"] == "None"
    assert found["captures"]["account_name"] == found["slml-packages"]["account_name"]


def test_no_az_sink_or_another_account_no_container(package) -> None:  # noqa: F811
    s3 = json.dumps({"sample": 1.0, "sink": "s3://b/p"})
    elsewhere = {"SLML_CAPTURE": CAPTURE, "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpoints"}
    for env in ({}, {"SLML_CAPTURE": s3}, elsewhere):
        _, resources = plan_of(package, env=env)
        assert set(containers(resources)) == {"slml-packages"}
