"""``slml:azure:FunctionModel`` under Pulumi's mocks (the engine's offline plan)."""

from __future__ import annotations

import contextvars
import zipfile

import pulumi
import pytest

from slml.engine import offline_plan
from slml.infra.azure import TYPE_TOKEN, FunctionModel, FunctionModelArgs
from slml.infra.azure_settings import FLEX_FORBIDDEN_SETTINGS, FLEX_FORBIDDEN_SITE_CONFIG


@pytest.fixture
def package(tmp_path):
    path = tmp_path / "package.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("function_app.py", "app = None\n")
    return path


SAS_WINDOW = {"sas_start": "2026-12-01T00:00:00Z", "sas_expiry": "2027-12-01T00:00:00Z"}


def plan_of(package, **overrides):
    args = FunctionModelArgs(
        project="iris", stage="dev", package_zip=package, package_sha256="ab" * 32,
        **{**SAS_WINDOW, **overrides},
    )  # fmt: skip

    def program():
        FunctionModel("iris-dev", args)

    resources = offline_plan(program, project="iris", stack="dev")
    return {r.type: r for r in resources}, resources


def test_flex_plan_sku_kind_and_runtime(package):
    by_type, resources = plan_of(package, memory_mb=4096, max_instances=7, python_version="3.12")
    assert by_type[TYPE_TOKEN].parent is None
    assert all(r.parent == "iris-dev" for r in resources if r.type != TYPE_TOKEN)
    plan = by_type["azure-native:web:AppServicePlan"].inputs
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["kind"] == "functionapp" and plan["reserved"] is True
    app = by_type["azure-native:web:WebApp"].inputs
    assert app["kind"] == "functionapp,linux" and app["https_only"] is True
    config = app["function_app_config"]
    assert config["runtime"] == {"name": "python", "version": "3.12"}
    assert config["scale_and_concurrency"] == {
        "instance_memory_mb": 4096,
        "maximum_instance_count": 7,
    }


class DeployedMocks(pulumi.runtime.Mocks):
    """Answers like Azure after a deploy (names, host name, keys, SAS), so the secret
    app settings can be read back; records every resource's raw inputs by type."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict] = {}
        self.calls: dict[str, dict] = {}

    def new_resource(self, args):
        self.inputs[args.typ] = dict(args.inputs)
        out = {"name": args.name, **args.inputs}
        if args.typ == "azure-native:web:WebApp":
            out["defaultHostName"] = f"{args.name}.azurewebsites.net"
        if args.typ == "azure-native:storage:StorageAccount":
            out["primaryEndpoints"] = {"blob": f"https://{args.name}.blob.core.windows.net/"}
        if args.typ == "azure-native:applicationinsights:Component":
            out["connectionString"] = "InstrumentationKey=1234;IngestionEndpoint=https://x/"
        if args.typ == "azure-native:storage:Blob":
            out["url"] = (
                f"https://acct.blob.core.windows.net/slml-packages/{args.inputs['blobName']}"
            )
        return f"{args.name}-id", out

    def call(self, args):
        self.calls[args.token] = dict(args.args)
        if args.token == "azure-native:storage:listStorageAccountKeys":
            return {"keys": [{"keyName": "key1", "value": "K3Y", "permissions": "FULL"}]}, []
        if args.token == "azure-native:storage:listStorageAccountServiceSAS":
            return {"serviceSasToken": "sv=2024&sr=b&sp=r&sig=S1G"}, []
        return {}, []


def deployed(package, **overrides):
    """Run the component under DeployedMocks (not preview) in a private context."""
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    mocks, outputs = DeployedMocks(), {}
    args = FunctionModelArgs(
        project="iris", stage="dev", package_zip=package, package_sha256="cd" * 32,
        **{**SAS_WINDOW, **overrides},
    )  # fmt: skip

    def program():
        model = FunctionModel("iris-dev", args)
        model.url.apply(lambda url: outputs.setdefault("url", url))

    def run():
        settings.reset_options(project="iris", stack="dev", preview=False)
        pulumi.runtime.set_mocks(mocks, project="iris", stack="dev", preview=False)
        _sync_await(run_pulumi_func(program))

    contextvars.copy_context().run(run)
    outputs["calls"] = mocks.calls
    return mocks.inputs, outputs


def unwrap(value):
    """A secret input arrives wrapped as {<secret signature>: ..., "value": v}."""
    from pulumi.runtime import rpc

    return value["value"] if rpc.is_rpc_secret(value) else value


def settings_of(inputs):
    site = unwrap(inputs["azure-native:web:WebApp"]["siteConfig"])
    return site, {pair["name"]: pair["value"] for pair in site["appSettings"]}


def test_flex_sends_no_forbidden_setting_or_site_property(package):
    inputs, outputs = deployed(package)
    site, settings = settings_of(inputs)
    assert set(settings) == {"AzureWebJobsStorage", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert "AccountKey=K3Y" in settings["AzureWebJobsStorage"]
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith("InstrumentationKey=1234")
    assert not set(settings) & FLEX_FORBIDDEN_SETTINGS
    camel = {k.replace("_", "") for k in FLEX_FORBIDDEN_SITE_CONFIG}
    assert not {k.lower() for k in site} & camel
    assert "netFrameworkVersion" not in site  # SiteConfigArgs' default; Flex rejects it
    assert outputs["url"] == "https://iris-dev-app.azurewebsites.net"


def test_consumption_settings_carry_the_package_sas_url(package):
    inputs, _ = deployed(package, plan="consumption")
    site, settings = settings_of(inputs)
    assert site["linuxFxVersion"] == "Python|3.11"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    blob = inputs["azure-native:storage:Blob"]["blobName"]
    assert settings["WEBSITE_RUN_FROM_PACKAGE"] == (
        f"https://acct.blob.core.windows.net/slml-packages/{blob}?sv=2024&sr=b&sp=r&sig=S1G"
    )


def test_consumption_package_sas_is_one_blob_read_only_and_bounded(package):
    """Issue 11 D16: not the whole container, not until 2099."""
    inputs, outputs = deployed(package, plan="consumption")
    sas = outputs["calls"]["azure-native:storage:listStorageAccountServiceSAS"]
    blob = inputs["azure-native:storage:Blob"]["blobName"]
    assert sas["resource"] == "b" and sas["permissions"] == "r" and sas["protocols"] == "https"
    assert sas["canonicalizedResource"] == f"/blob/irisdev/slml-packages/{blob}"
    assert sas["sharedAccessStartTime"] == SAS_WINDOW["sas_start"]
    assert sas["sharedAccessExpiryTime"] == SAS_WINDOW["sas_expiry"]


def test_consumption_without_a_sas_window_is_refused(package):
    with pytest.raises(ValueError, match="needs sas_start and sas_expiry"):
        plan_of(package, plan="consumption", sas_start="", sas_expiry="")


def test_flex_deployment_container_url_points_at_the_package_container(package):
    inputs, _ = deployed(package)
    storage = inputs["azure-native:web:WebApp"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["value"].endswith(".blob.core.windows.net/slml-packages")
    deploy = inputs["azure-native:resources:Resource"]
    assert deploy["properties"]["packageUri"].endswith("/slml-packages/released-package.zip")
    assert deploy["properties"]["remoteBuild"] is False


def test_flex_package_goes_to_the_deployment_container_and_onedeploy(package):
    by_type, _ = plan_of(package)
    blob = by_type["azure-native:storage:Blob"].inputs
    container = by_type["azure-native:storage:BlobContainer"].inputs
    assert blob["blob_name"] == "released-package.zip"
    assert blob["source"] == f"FileAsset({package})"
    assert blob["container_name"] == container["container_name"] == "slml-packages"
    assert container["public_access"] == "None"
    storage = by_type["azure-native:web:WebApp"].inputs["function_app_config"]["deployment"]
    assert storage["storage"]["type"] == "blobContainer"
    assert storage["storage"]["authentication"] == {
        "type": "StorageAccountConnectionString",
        "storage_account_connection_string_name": "AzureWebJobsStorage",
    }
    deploy = by_type["azure-native:resources:Resource"].inputs
    assert deploy["resource_type"] == "extensions" and deploy["resource_name"] == "onedeploy"
    assert deploy["resource_provider_namespace"] == "Microsoft.Web"


def test_consumption_plan_sku_and_package_blob(package):
    by_type, _ = plan_of(package, plan="consumption")
    plan = by_type["azure-native:web:AppServicePlan"].inputs
    assert plan["sku"] == {"name": "Y1", "tier": "Dynamic"} and plan["reserved"] is True
    app = by_type["azure-native:web:WebApp"].inputs
    assert "function_app_config" not in app
    assert app["site_config"] == "[secret]"  # it holds the storage key and the SAS URL
    assert by_type["azure-native:storage:Blob"].inputs["blob_name"] == "iris-abababababababab.zip"
    assert "azure-native:resources:Resource" not in by_type


def test_storage_account_is_locked_down(package):
    by_type, _ = plan_of(package)
    account = by_type["azure-native:storage:StorageAccount"].inputs
    assert account["kind"] == "StorageV2"
    assert account["sku"] == {"name": "Standard_LRS"}
    assert account["enable_https_traffic_only"] is True
    assert account["minimum_tls_version"] == "TLS1_2"
    assert account["allow_blob_public_access"] is False


def test_region_and_tags_reach_the_resource_group(package):
    by_type, _ = plan_of(package, region="westeurope", tags={"team": "ml"})
    group = by_type["azure-native:resources:ResourceGroup"].inputs
    assert group["location"] == "westeurope"
    assert group["tags"] == {"slml-project": "iris", "slml-stage": "dev", "team": "ml"}


@pytest.mark.parametrize("plan", ["flex", "consumption"])
def test_host_logs_go_to_a_workspace_based_application_insights(package, plan):
    by_type, _ = plan_of(package, plan=plan, region="westeurope")
    workspace = by_type["azure-native:operationalinsights:Workspace"]
    assert workspace.inputs["sku"] == {"name": "PerGB2018"}
    assert workspace.inputs["retention_in_days"] == 30
    assert workspace.inputs["location"] == "westeurope"
    insights = by_type["azure-native:applicationinsights:Component"].inputs
    assert insights["kind"] == "web" and insights["application_type"] == "web"
    assert insights["ingestion_mode"] == "LogAnalytics"
    assert insights["location"] == "westeurope"
    inputs, _ = deployed(package, plan=plan)
    component = inputs["azure-native:applicationinsights:Component"]
    assert component["workspaceResourceId"] == "iris-dev-logs-id"  # the workspace's id
    _, settings = settings_of(inputs)
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == (
        "InstrumentationKey=1234;IngestionEndpoint=https://x/"
    )
