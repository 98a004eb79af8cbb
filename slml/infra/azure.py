"""``slml:azure:FunctionModel``: a model behind an Azure Function App (pulumi-azure-native 3).

Children: a resource group, a storage account (host storage + package), a private blob
container, the package blob, the plan (Flex Consumption FC1 by default, Linux
Consumption Y1 selectable), a Log Analytics workspace with a workspace-based
Application Insights component (where the host sends its traces and requests, which
``slml logs`` queries) and the Function App. What each plan needs and forbids lives
in ``slml.infra.azure_settings`` (pure, tested without Pulumi).

How the package reaches the app:

- **Flex**: the zip is uploaded as ``released-package.zip`` into the container that
  ``function_app_config.deployment.storage`` names, then the ``onedeploy`` site
  extension (``Microsoft.Web/sites/extensions``, Microsoft's documented IaC path for
  Flex) deploys it; it is replaced whenever the package's sha256 changes.
- **Consumption**: ``WEBSITE_RUN_FROM_PACKAGE`` points at the blob with a read-only,
  HTTPS-only service SAS scoped to that one blob (``sr=b``) and valid from
  ``sas_start`` to ``sas_expiry`` (``azure.package_sas_days``, a year by default; see
  ``azure_settings.package_sas_window``); the blob name carries the package hash, so a
  new package changes the setting and restarts the app.

Deployment storage authentication on Flex uses the storage connection string held in
``AzureWebJobsStorage`` (``StorageAccountConnectionString``) rather than a managed
identity: a managed identity needs a role assignment, which a deployer with only
Contributor rights cannot create, and the host already needs that connection string.

Captured traffic (``SLML_CAPTURE`` in ``env`` with an ``az://CONTAINER/PREFIX`` sink):
the runtime's Azure sink authenticates with a connection string
(``AZURE_STORAGE_CONNECTION_STRING``, else the host's ``AzureWebJobsStorage``), not a
managed identity, so a "Storage Blob Data Contributor" role assignment would grant
nothing the app uses (and needs rights a Contributor lacks). Instead, unless the user
points ``AZURE_STORAGE_CONNECTION_STRING`` at another account, the plan creates the
private container CONTAINER in the app's own storage account, which already holds its
package and host state: captured objects stay inside the deployment's account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import applicationinsights, operationalinsights, resources, storage, web

from slml.infra.azure_settings import (
    FLEX_PACKAGE_BLOB,
    STORAGE_SETTING,
    Plan,
    app_settings,
    package_blob_resource,
    plan_sku,
    resource_prefix,
    site_config_fields,
    storage_account_name,
)
from slml.infra.capture_grant import ENV_VAR as CAPTURE_VAR
from slml.infra.capture_grant import object_sink

TYPE_TOKEN = "slml:azure:FunctionModel"
PACKAGE_CONTAINER = "slml-packages"
ONEDEPLOY_API_VERSION = "2024-04-01"
#: Log Analytics keeps 31 days at no retention charge on PerGB2018; 30 stays inside it.
LOG_RETENTION_DAYS = 30


@dataclass(frozen=True)
class FunctionModelArgs:
    """Inputs of the component; plain data, validated by ``slml.config``."""

    project: str
    stage: str
    package_zip: Path
    package_sha256: str
    plan: Plan = "flex"
    sas_start: str = ""  # the Consumption package SAS's window (UTC, Azure's format);
    sas_expiry: str = ""  # required for consumption: azure_settings.package_sas_window
    region: str = "eastus"
    python_version: str = "3.11"
    memory_mb: int = 2048
    max_instances: int = 40
    auth: str = "function"
    env: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def connection_string(account: str, key: str) -> str:
    """The storage connection string the Functions host reads from AzureWebJobsStorage."""
    return (
        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
        "EndpointSuffix=core.windows.net"
    )


def _first_key(keys: list | None) -> str:
    """The first account key's value. Azure always returns two; only an offline plan's
    mocks answer with none, and the value is a secret either way."""
    if not keys:
        return ""
    first = keys[0]
    return first.get("value", "") if isinstance(first, dict) else first.value


class FunctionModel(pulumi.ComponentResource):
    """The component. Outputs: ``url`` (https://<default host name>), ``app_name``,
    ``resource_group``, ``app_id`` (the site's ARM id, for the operations client),
    ``workspace_id`` (the Log Analytics workspace's customer id, for log queries)."""

    url: pulumi.Output[str]
    app_name: pulumi.Output[str]
    resource_group: pulumi.Output[str]

    def __init__(
        self, name: str, args: FunctionModelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        prefix = resource_prefix(args.project, args.stage)
        tags = {"slml-project": args.project, "slml-stage": args.stage, **args.tags}
        self.rg = resources.ResourceGroup(
            f"{prefix}-rg", location=args.region, tags=tags, opts=self._child
        )
        self.account = self._storage_account(tags)
        self.container = storage.BlobContainer(
            f"{prefix}-packages",
            account_name=self.account.name,
            resource_group_name=self.rg.name,
            container_name=PACKAGE_CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=self._child,
        )
        self.capture_container = self._capture_container(prefix)
        self.blob = self._package_blob(prefix)
        self.plan = self._plan(prefix, tags)
        self.workspace, self.insights = self._monitoring(prefix, tags)
        self.app = self._web_app(prefix, tags)
        if args.plan == "flex":
            self.deploy = self._one_deploy(prefix)
        self.url = pulumi.Output.concat("https://", self.app.default_host_name)
        self.app_name = self.app.name
        self.resource_group = self.rg.name
        self.app_id = self.app.id
        self.workspace_id = self.workspace.customer_id
        self.register_outputs(
            {
                "url": self.url,
                "app_name": self.app_name,
                "resource_group": self.resource_group,
                "app_id": self.app_id,
                "workspace_id": self.workspace_id,
            }
        )

    # -- storage ------------------------------------------------------------------------
    def _storage_account(self, tags: dict[str, str]) -> storage.StorageAccount:
        return storage.StorageAccount(
            storage_account_name(self._args.project, self._args.stage),
            resource_group_name=self.rg.name,
            location=self._args.region,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            allow_shared_key_access=True,  # the connection string below needs it
            tags=tags,
            opts=self._child,
        )

    def _capture_container(self, prefix: str) -> storage.BlobContainer | None:
        """The az:// capture sink's container in the app's account (module docstring)."""
        sink = object_sink(self._args.env.get(CAPTURE_VAR), "az")
        if sink is None or "AZURE_STORAGE_CONNECTION_STRING" in self._args.env:
            return None
        return storage.BlobContainer(
            f"{prefix}-capture",
            account_name=self.account.name,
            resource_group_name=self.rg.name,
            container_name=sink[0],
            public_access=storage.PublicAccess.NONE,
            opts=self._child,
        )

    def _package_blob(self, prefix: str) -> storage.Blob:
        blob_name = self.blob_name = (
            FLEX_PACKAGE_BLOB
            if self._args.plan == "flex"
            else f"{self._args.project}-{self._args.package_sha256[:16]}.zip"
        )
        return storage.Blob(
            f"{prefix}-package",
            account_name=self.account.name,
            resource_group_name=self.rg.name,
            container_name=PACKAGE_CONTAINER,
            blob_name=blob_name,
            type=storage.BlobType.BLOCK,
            content_type="application/zip",
            source=pulumi.FileAsset(str(self._args.package_zip)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
        )

    def _connection_string(self) -> pulumi.Output[str]:
        keys = storage.list_storage_account_keys_output(
            resource_group_name=self.rg.name, account_name=self.account.name
        )
        return pulumi.Output.secret(
            pulumi.Output.all(self.account.name, keys.keys).apply(
                lambda v: connection_string(v[0], _first_key(v[1]))
            )
        )

    def _package_sas_url(self) -> pulumi.Output[str]:
        """The package blob's URL with a read-only SAS for that blob alone, bounded."""
        a = self._args
        if not (a.sas_start and a.sas_expiry):
            raise ValueError("the consumption plan needs sas_start and sas_expiry")
        sas = storage.list_storage_account_service_sas_output(
            account_name=self.account.name,
            resource_group_name=self.rg.name,
            protocols=storage.HttpProtocol.HTTPS,
            shared_access_start_time=a.sas_start,
            shared_access_expiry_time=a.sas_expiry,
            resource=storage.SignedResource.B,
            permissions=storage.Permissions.R,
            canonicalized_resource=self.account.name.apply(
                lambda account: package_blob_resource(account, PACKAGE_CONTAINER, self.blob_name)
            ),
        )
        return pulumi.Output.secret(
            pulumi.Output.all(self.blob.url, sas.service_sas_token).apply(
                lambda v: f"{v[0]}?{v[1] or ''}"
            )
        )

    # -- monitoring ---------------------------------------------------------------------
    def _monitoring(
        self, prefix: str, tags: dict[str, str]
    ) -> tuple[operationalinsights.Workspace, applicationinsights.Component]:
        """A Log Analytics workspace and the workspace-based Application Insights
        component the app's ``APPLICATIONINSIGHTS_CONNECTION_STRING`` points at."""
        workspace = operationalinsights.Workspace(
            f"{prefix}-logs",
            resource_group_name=self.rg.name,
            location=self._args.region,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=LOG_RETENTION_DAYS,
            tags=tags,
            opts=self._child,
        )
        insights = applicationinsights.Component(
            f"{prefix}-insights",
            resource_group_name=self.rg.name,
            location=self._args.region,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=workspace.id,
            tags=tags,
            opts=self._child,
        )
        return workspace, insights

    # -- compute ------------------------------------------------------------------------
    def _plan(self, prefix: str, tags: dict[str, str]) -> web.AppServicePlan:
        sku = plan_sku(self._args.plan)
        return web.AppServicePlan(
            f"{prefix}-plan",
            resource_group_name=self.rg.name,
            location=self._args.region,
            kind=sku.kind,
            reserved=sku.reserved,
            sku=web.SkuDescriptionArgs(name=sku.name, tier=sku.tier),
            tags=tags,
            opts=self._child,
        )

    def _site_config(self) -> web.SiteConfigArgsDict:
        """A typed dict, not ``SiteConfigArgs``: the class fills in
        ``net_framework_version='v4.6'``, which Flex rejects with a 400
        (pulumi/pulumi-azure-native#4168)."""
        a = self._args
        package_url = self._package_sas_url() if a.plan == "consumption" else None
        pairs = app_settings(
            a.plan,
            storage_connection=self._connection_string(),
            package_url=package_url,
            insights_connection=pulumi.Output.secret(self.insights.connection_string),
            env=a.env,
        )
        config: web.SiteConfigArgsDict = {
            "app_settings": [web.NameValuePairArgs(name=n, value=v) for n, v in pairs],
            **site_config_fields(a.plan, python_version=a.python_version),  # type: ignore[typeddict-item]
        }
        return config

    def _function_app_config(self) -> web.FunctionAppConfigArgs:
        a = self._args
        container_url = pulumi.Output.concat(self.account.primary_endpoints.blob, PACKAGE_CONTAINER)
        return web.FunctionAppConfigArgs(
            deployment=web.FunctionsDeploymentArgs(
                storage=web.FunctionsDeploymentStorageArgs(
                    type="blobContainer",
                    value=container_url,
                    authentication=web.FunctionsDeploymentStorageAuthenticationArgs(
                        type="StorageAccountConnectionString",
                        storage_account_connection_string_name=STORAGE_SETTING,
                    ),
                )
            ),
            runtime=web.FunctionsRuntimeArgs(name="python", version=a.python_version),
            scale_and_concurrency=web.FunctionsScaleAndConcurrencyArgs(
                instance_memory_mb=a.memory_mb, maximum_instance_count=a.max_instances
            ),
        )

    def _web_app(self, prefix: str, tags: dict[str, str]) -> web.WebApp:
        flex = self._args.plan == "flex"
        return web.WebApp(
            f"{prefix}-app",
            resource_group_name=self.rg.name,
            location=self._args.region,
            kind="functionapp,linux",
            server_farm_id=self.plan.id,
            https_only=True,
            reserved=None if flex else True,
            site_config=self._site_config(),
            function_app_config=self._function_app_config() if flex else None,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.blob]),
        )

    def _one_deploy(self, prefix: str) -> resources.Resource:
        """Flex: deploy ``released-package.zip`` with the onedeploy site extension."""
        return resources.Resource(
            f"{prefix}-onedeploy",
            resource_group_name=self.rg.name,
            resource_provider_namespace="Microsoft.Web",
            parent_resource_path=pulumi.Output.concat("sites/", self.app.name),
            resource_type="extensions",
            resource_name_="onedeploy",
            api_version=ONEDEPLOY_API_VERSION,
            properties={"packageUri": self.blob.url, "remoteBuild": False},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.blob, self.app],
                replacement_trigger=self._args.package_sha256,
            ),
        )
