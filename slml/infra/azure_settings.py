"""Pure helpers for the Azure Functions component: app settings per hosting plan, the
site config each plan accepts, names and plan SKUs. No Pulumi import; values may be
plain strings or Pulumi Outputs, these functions only arrange them.

Flex Consumption (FC1) moved much of a function app's configuration into
``functionAppConfig`` and rejects or silently ignores the old settings. The lists below
follow Microsoft's "Flex Consumption plan deprecations" table
(learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations)
and the site properties it deprecates. Linux Consumption (Y1) does not support the
Azure Files content share settings (same page, WEBSITE_CONTENTSHARE and
WEBSITE_CONTENTAZUREFILECONNECTIONSTRING: "Not supported for Consumption plans running
Linux").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from slml.errors import ConfigError

Plan = Literal["flex", "consumption"]

#: App settings Flex Consumption deprecates: replaced by functionAppConfig or not valid.
FLEX_FORBIDDEN_SETTINGS: frozenset[str] = frozenset(
    {
        "ENABLE_ORYX_BUILD",
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_MAX_HTTP_CONCURRENCY",
        "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
        "FUNCTIONS_WORKER_PROCESS_COUNT",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTOVERVNET",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_DNS_SERVER",
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
        "WEBSITE_VNET_ROUTE_ALL",
    }
)

#: Site config properties (Python SDK names) Flex Consumption deprecates.
FLEX_FORBIDDEN_SITE_CONFIG: frozenset[str] = frozenset(
    {
        "always_on",
        "function_app_scale_limit",
        "java_version",
        "linux_fx_version",
        "net_framework_version",
        "power_shell_version",
        "pre_warmed_instance_count",
        "use32_bit_worker_process",
        "windows_fx_version",
    }
)

#: Linux Consumption has no Azure Files content share.
CONSUMPTION_FORBIDDEN_SETTINGS: frozenset[str] = frozenset(
    {"WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"}
)

#: Settings slml manages itself; ``azure.env`` may not override them.
MANAGED_SETTINGS: frozenset[str] = frozenset(
    {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION",
     "WEBSITE_RUN_FROM_PACKAGE", "SLML_MODEL_DIR", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
)  # fmt: skip

#: Connects the Functions host to Application Insights. Valid on both plans: it is not
#: in Microsoft's Flex deprecations table, and the Flex quickstart templates set it.
INSIGHTS_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"

#: The app setting holding the storage connection string. Flex's deployment storage
#: authentication names it too (``storage_account_connection_string_name``).
STORAGE_SETTING = "AzureWebJobsStorage"
#: Flex reads its package from this blob in the deployment container (one deploy).
FLEX_PACKAGE_BLOB = "released-package.zip"


@dataclass(frozen=True)
class PlanSku:
    """The App Service plan of a hosting plan: SKU name and tier, plan kind."""

    name: str
    tier: str
    kind: str = "functionapp"
    reserved: bool = True  # Linux


def plan_sku(plan: Plan) -> PlanSku:
    """FC1/FlexConsumption for ``flex``, Y1/Dynamic for ``consumption``; Linux both."""
    if plan == "flex":
        return PlanSku(name="FC1", tier="FlexConsumption")
    if plan == "consumption":
        return PlanSku(name="Y1", tier="Dynamic")
    raise ConfigError(f"azure.plan: {plan!r} is not a plan; expected 'flex' or 'consumption'")


def forbidden_settings(plan: Plan) -> frozenset[str]:
    """App setting names the plan rejects or ignores."""
    return FLEX_FORBIDDEN_SETTINGS if plan == "flex" else CONSUMPTION_FORBIDDEN_SETTINGS


def check_settings(plan: Plan, names: Iterable[str], *, where: str = "app settings") -> None:
    """Raise ConfigError naming every setting ``plan`` forbids among ``names``.

    App setting names are case-insensitive in Azure, so the check is too.
    """
    banned = {n.upper() for n in forbidden_settings(plan)}
    bad = sorted(n for n in names if n.upper() in banned)
    if bad:
        raise ConfigError(
            f"{where}: {', '.join(bad)} cannot be set on the {plan} plan "
            "(Microsoft's Flex Consumption deprecations / Linux Consumption limits)",
            hint="remove them; slml sets what the plan needs (runtime, package, storage)",
        )


def check_site_config(plan: Plan, fields: Iterable[str]) -> None:
    """Raise ConfigError when a site config property the plan deprecates is present."""
    if plan != "flex":
        return
    bad = sorted(set(fields) & FLEX_FORBIDDEN_SITE_CONFIG)
    if bad:
        raise ConfigError(f"site config: {', '.join(bad)} is not accepted on the flex plan")


def check_user_env(plan: Plan, env: Mapping[str, str]) -> None:
    """Reject ``azure.env`` keys slml manages or the plan forbids, naming the key path."""
    managed = {m.upper() for m in MANAGED_SETTINGS}
    clash = sorted(k for k in env if k.upper() in managed)
    if clash:
        raise ConfigError(
            f"azure.env: {', '.join(clash)} is managed by slml and cannot be overridden",
            hint="remove it from azure.env",
        )
    check_settings(plan, env, where="azure.env")


def app_settings(
    plan: Plan,
    *,
    storage_connection: Any,
    package_url: Any = None,
    insights_connection: Any = None,
    env: Mapping[str, str] | None = None,
) -> list[tuple[str, Any]]:
    """The app settings to send for ``plan``, as ordered (name, value) pairs.

    ``storage_connection`` is the storage account's connection string (a secret);
    ``package_url`` the package blob's SAS URL, required for ``consumption`` (it becomes
    WEBSITE_RUN_FROM_PACKAGE) and refused for ``flex`` (which deploys from its blob
    container). ``insights_connection`` is the Application Insights connection string
    (the host then sends its traces and requests there). ``env`` is the user's
    ``azure.env``. Raises ConfigError when a forbidden or managed setting would be sent.
    """
    env = dict(env or {})
    check_user_env(plan, env)
    pairs: list[tuple[str, Any]] = [(STORAGE_SETTING, storage_connection)]
    if insights_connection is not None:
        pairs.append((INSIGHTS_SETTING, insights_connection))
    if plan == "consumption":
        if package_url is None:
            raise ConfigError("the consumption plan needs the package's blob URL")
        pairs += [
            ("FUNCTIONS_WORKER_RUNTIME", "python"),
            ("FUNCTIONS_EXTENSION_VERSION", "~4"),
            ("WEBSITE_RUN_FROM_PACKAGE", package_url),
        ]
    elif package_url is not None:
        raise ConfigError("the flex plan deploys from its blob container, not a package URL")
    pairs += sorted(env.items())
    check_settings(plan, (name for name, _ in pairs))
    return pairs


def site_config_fields(plan: Plan, *, python_version: str) -> dict[str, Any]:
    """Site config properties (besides app settings) for ``plan``: the Python stack
    on Consumption (``linux_fx_version``); nothing plan-specific on Flex, whose runtime
    lives in ``function_app_config``."""
    fields: dict[str, Any] = {"min_tls_version": "1.2", "http20_enabled": True}
    if plan == "consumption":
        fields.update(linux_fx_version=f"Python|{python_version}", ftps_state="Disabled")
    check_site_config(plan, fields)
    return fields


#: The Consumption package URL's SAS: default and bounds of ``azure.package_sas_days``.
#: At least two months: the window starts at the month's first day.
SAS_DAYS_DEFAULT, SAS_DAYS_MIN, SAS_DAYS_MAX = 365, 60, 730
SAS_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def package_sas_window(now: datetime, days: int) -> tuple[str, str]:
    """The (start, expiry) of the package blob's SAS, as Azure's UTC timestamps.

    The start is the first day of ``now``'s UTC month, so the signed URL (an app
    setting: a change restarts the app) changes at most once a month when nothing else
    does; the expiry is ``days`` after it, so a deploy leaves at least ``days - 31`` of
    validity. After the expiry the app cannot load its package on a cold start: deploy
    again before (``slml preview`` warns 30 days ahead)."""
    if not SAS_DAYS_MIN <= days <= SAS_DAYS_MAX:
        raise ValueError(f"package SAS days {days} is outside {SAS_DAYS_MIN}-{SAS_DAYS_MAX}")
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    expiry = start + timedelta(days=days)
    return start.strftime(SAS_TIME_FORMAT), expiry.strftime(SAS_TIME_FORMAT)


def package_blob_resource(account: str, container: str, blob: str) -> str:
    """The SAS's canonicalized resource for one blob: ``/blob/<account>/<container>/<blob>``."""
    return f"/blob/{account}/{container}/{blob}"


def storage_account_name(project: str, stage: str) -> str:
    """A logical name fit for a storage account (lowercase letters and digits, ≤ 16
    so Pulumi's random suffix keeps the real name within Azure's 24)."""
    return (re.sub(r"[^a-z0-9]", "", f"{project}{stage}") or "slml")[:16]


def resource_prefix(project: str, stage: str) -> str:
    """``<project>-<stage>``: the prefix of every other logical name."""
    return f"{project}-{stage}"
