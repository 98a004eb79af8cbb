"""``--provider azure``: an Azure Function App (Flex Consumption by default).

Build writes the Functions package (``slml.bundle.azure``); plan/deploy/destroy come
from ``PulumiProvider`` running ``slml:azure:FunctionModel``. ``status`` reads the site
resource and ``invoke`` fetches the app's default function key, both through the Azure
management REST API (``azure_ops``); the key goes in ``x-functions-key``. ``logs``
queries the app's ``AppTraces`` in the component's Log Analytics workspace (the host's
traces; minutes of ingestion delay). The operations client is injected for tests.

Rollouts: ``--canary`` and ``--shadow`` are refused, saying why. Flex Consumption (the
default plan) has no deployment slots, only a site update strategy, so two versions
never serve side by side. The Consumption plan has slots, but each slot carries its own
function keys, so callers holding the production key would be refused on the share
routed to a slot; slml does not drive slots there yet. Promote and roll back work as
redeploys (``rollback``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from slml.bundle.azure import build_azure_package
from slml.bundle.served_env import model_env
from slml.capture import capture_env, requirements_with_sink
from slml.config.sections import AzureConfig
from slml.engine import Program
from slml.errors import ProviderUnavailable, require_extra
from slml.infra.azure_settings import SAS_TIME_FORMAT, check_user_env, package_sas_window
from slml.providers import azure_ops
from slml.providers import traffic as tr
from slml.providers.azure_ops import AzureOps
from slml.providers.base import Bundle, DeployResult, Plan, ProviderContext, Status
from slml.providers.outputs import AzureOutputs
from slml.providers.pulumi_base import PulumiProvider
from slml.runtime.manifest import sha256_file

PUBLIC_WARNING = (
    "azure.auth is 'none': anyone who knows the URL can call the model (anonymous "
    "auth level). Remove `auth: none` to require a function key."
)
_STATES = {"running": "running", "stopped": "stopped"}
SAS_WARN_DAYS = 30
SDK_MODULES = ("pulumi", "pulumi_azure_native")


class AzureProvider(PulumiProvider):
    name: ClassVar[str] = "azure"
    config_model = AzureConfig
    plugin_packages = (("azure-native", "pulumi_azure_native"),)

    def __init__(
        self,
        *,
        ops_factory: Callable[[], AzureOps] = AzureOps,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._ops_factory = ops_factory
        self._sleep = sleep
        self._clock = clock

    def stack_config(self, ctx: ProviderContext) -> dict[str, str]:
        return {"azure-native:location": self.section(ctx).region}

    def warnings(self, ctx: ProviderContext) -> list[str]:
        out = [PUBLIC_WARNING] if self.section(ctx).auth == "none" else []
        expiry = self._recorded_sas_expiry(ctx)
        if expiry is not None and expiry - self._clock() < timedelta(days=SAS_WARN_DAYS):
            out.append(
                f"the deployed app's package URL (SAS) expires {expiry:%Y-%m-%d}: after that "
                "the Consumption app cannot load its code on a cold start. `slml deploy` "
                "signs a new one."
            )
        return out

    def _recorded_sas_expiry(self, ctx: ProviderContext) -> datetime | None:
        value = AzureOutputs.of(ctx.state.read_record(ctx.stage, self.name)).package_sas_expiry
        try:
            return datetime.strptime(str(value), SAS_TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None

    def build(self, *, ctx: ProviderContext) -> Bundle:
        """The zip-deployable package for the configured Python on Linux x86_64."""
        section: AzureConfig = self.section(ctx)
        check_user_env(section.plan, section.env)  # before minutes of building
        return build_azure_package(
            artifact_dir=ctx.config.model,
            out_dir=ctx.state.build_dir(self.name),
            python_version=section.python_version,
            auth=section.auth,
            reporter=ctx.reporter,
            requirements_changes=requirements_with_sink(ctx.config),
        )

    def preflight(self, *, ctx: ProviderContext) -> None:
        """Before any build: no canary or shadow asked, the Pulumi SDKs are importable,
        and the CLI is here."""
        self.check_rollout(ctx)
        require_extra("azure", *SDK_MODULES)
        super().preflight(ctx=ctx)

    def check_rollout(self, ctx: ProviderContext) -> None:
        """Raise ProviderUnavailable for --canary/--shadow, with the plan's reason."""
        mode = tr.mode(ctx)
        if mode == "replace":
            return
        plan = self.section(ctx).plan
        if plan == "flex":
            why = ("Flex Consumption (azure.plan: flex, the default) has no deployment "
                   "slots, only a site update strategy, so two versions never serve side by "
                   "side (learn.microsoft.com/azure/azure-functions/flex-consumption-plan)")
        else:
            why = ("on the Consumption plan each deployment slot has its own function keys, "
                   "so calls routed to a slot with the production key would be refused; "
                   "slml does not drive Consumption slots")  # fmt: skip
        raise tr.refuse(self.name, f"deploy --{mode}", why,
                        "deploy without --canary/--shadow (a replacement), or use "
                        "--provider gcp, aws or local for a canary")  # fmt: skip

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        self.check_rollout(ctx)
        return super().plan(ctx=ctx, bundle=bundle)

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        self.check_rollout(ctx)
        return super().deploy(ctx=ctx, bundle=bundle)

    def program(self, *, ctx: ProviderContext, bundle: Bundle) -> Program:
        """Creates ``FunctionModel`` and exports url, app_name, resource_group, app_id,
        workspace_id. Raises ProviderUnavailable naming ``slml[azure]`` without the SDKs."""
        require_extra("azure", *SDK_MODULES)
        import pulumi

        from slml.infra.azure import FunctionModel, FunctionModelArgs

        section: AzureConfig = self.section(ctx)
        sas_start, sas_expiry = package_sas_window(self._clock(), section.package_sas_days)
        args = FunctionModelArgs(
            project=ctx.name,
            stage=ctx.stage,
            package_zip=bundle.files["zip"],
            package_sha256=sha256_file(bundle.files["zip"]),
            plan=section.plan,
            region=section.region,
            python_version=section.python_version,
            memory_mb=section.memory,
            max_instances=section.max_instances,
            auth=section.auth,
            env={**model_env(ctx, "azure"), **capture_env(ctx.config, default=None)},
            sas_start=sas_start,
            sas_expiry=sas_expiry,
        )

        def run() -> None:
            model = FunctionModel(f"{ctx.name}-{ctx.stage}", args)
            for key in ("url", "app_name", "resource_group", "app_id", "workspace_id"):
                pulumi.export(key, getattr(model, key))
            if section.plan == "consumption":
                pulumi.export("package_sas_expiry", sas_expiry)

        return run

    def _app_id(self, record: dict[str, Any]) -> str:
        return AzureOutputs.of(record).need("app_id")

    def status(self, *, ctx: ProviderContext) -> Status:
        """The app's URL and state from the site resource (management API)."""
        record = self.record(ctx)
        site = self._ops_factory().site(self._app_id(record))
        props = site.get("properties") or {}
        state = str(props.get("state") or "").lower()
        host = props.get("defaultHostName")
        return Status(
            provider=self.name,
            stage=ctx.stage,
            state=_STATES.get(state, "unknown"),  # type: ignore[arg-type]
            url=f"https://{host}" if host else record.get("url"),
            version=record.get("version"),
            details={
                "state": props.get("state"),
                "plan": props.get("sku"),
                "app_name": site.get("name"),
                "resource_group": AzureOutputs.of(record).resource_group,
            },
        )

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``<url>/predict``; with function auth, the app's default
        key (fetched from the management API) goes in ``x-functions-key``."""
        record = self.record(ctx)
        ops = self._ops_factory()
        key = None
        if self.section(ctx).auth == "function":
            key = ops.host_key(self._app_id(record))
        return ops.predict(record["url"], payload, key=key)

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """The Function App's last ``lines`` trace messages from Application Insights
        (Log Analytics ``AppTraces``), oldest first; ``follow`` polls every 10 s."""
        out = AzureOutputs.of(self.record(ctx))
        if not out.workspace_id:
            raise ProviderUnavailable(
                "this azure deployment has no Log Analytics workspace to read logs from "
                "(it was deployed before slml connected Application Insights)",
                hint="run `slml deploy --provider azure` again to add it; meanwhile the "
                "Function App's Log stream in the Azure portal shows live output",
            )
        return azure_ops.tail_logs(
            self._ops_factory(), workspace_id=out.workspace_id,
            app_name=out.app_name or "", lines=lines, follow=follow, sleep=self._sleep,
        )  # fmt: skip
