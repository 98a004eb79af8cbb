"""AzureProvider: the offline plan from a bundle, warnings, and status/invoke through
the management REST API on an httpx.MockTransport."""

from __future__ import annotations

import json
import zipfile

import httpx
import pytest

from slml.config import parse_config
from slml.errors import ConfigError, InvokeError, NotDeployed, ProviderUnavailable
from slml.providers.azure import PUBLIC_WARNING, AzureProvider
from slml.providers.azure_ops import AzureOps, default_token_getter
from slml.providers.base import Bundle, NullReporter, ProviderContext, SizeReport
from slml.state import ProjectState

APP_ID = "/subscriptions/sub-1/resourceGroups/iris-dev-rg/providers/Microsoft.Web/sites/iris-app"
URL = "https://iris-app.azurewebsites.net"


def context(tmp_path, azure_yaml: str = "") -> ProviderContext:
    text = f"name: iris\nmodel: {tmp_path}\nprovider: azure\n{azure_yaml}"
    config = parse_config(text, base_dir=tmp_path)
    return ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())


def bundle(tmp_path) -> Bundle:
    zip_path = tmp_path / "package.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("function_app.py", "app = None\n")
    return Bundle(provider="azure", path=tmp_path, lock_hash="l" * 64, model_sha256="m" * 64,
                  python_version="3.11", platform="x86_64-manylinux_2_28",
                  size=SizeReport(unzipped=1), files={"zip": zip_path})  # fmt: skip


def record(ctx, outputs=None):
    outputs = outputs or {"url": URL, "app_id": APP_ID, "resource_group": "iris-dev-rg"}
    ctx.state.write_record(ctx.stage, "azure", {"url": URL, "version": 3, "outputs": outputs})


class Azure:
    """A fake of the management API and the app, recording every request."""

    def __init__(self, *, state="Running", key="k3y"):
        self.requests: list[httpx.Request] = []
        self.state, self.key = state, key

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.url.host == "management.azure.com":
            assert request.headers["authorization"] == "Bearer t0ken"
            assert request.url.params["api-version"] == "2023-12-01"
            if request.method == "GET" and path == APP_ID:
                props = {"state": self.state, "defaultHostName": "iris-app.azurewebsites.net",
                         "sku": "FlexConsumption"}  # fmt: skip
                return httpx.Response(200, json={"name": "iris-app", "properties": props})
            if request.method == "POST" and path == APP_ID + "/host/default/listKeys":
                keys = {"default": self.key} if self.key else {}
                return httpx.Response(200, json={"masterKey": "m", "functionKeys": keys})
            return httpx.Response(404, json={"error": {"code": "NotFound", "message": "no site"}})
        if path == "/predict":
            if request.headers.get("x-functions-key") not in (self.key, None) or (
                self.key and "x-functions-key" not in request.headers
            ):
                return httpx.Response(401)
            rows = json.loads(request.content)["instances"]
            return httpx.Response(200, json={"predictions": [0] * len(rows)})
        return httpx.Response(404)


def provider(fake: Azure) -> AzureProvider:
    ops = lambda: AzureOps(token_getter=lambda: "t0ken", transport=httpx.MockTransport(fake))  # noqa: E731
    return AzureProvider(ops_factory=ops, cli_available=lambda: False)


def test_invoke_fetches_the_function_key_and_sends_it(tmp_path):
    fake = Azure()
    ctx = context(tmp_path)
    record(ctx)
    answer = provider(fake).invoke(ctx=ctx, payload={"instances": [[1, 2, 3, 4]]})
    assert answer == {"predictions": [0]}
    keys, call = fake.requests
    assert keys.url.path.endswith("/host/default/listKeys") and keys.method == "POST"
    assert str(call.url) == f"{URL}/predict" and call.headers["x-functions-key"] == "k3y"


def test_invoke_without_auth_sends_no_key_and_asks_for_no_token(tmp_path):
    fake = Azure(key=None)
    ctx = context(tmp_path, "azure:\n  auth: none\n")
    record(ctx)
    assert provider(fake).invoke(ctx=ctx, payload={"instances": [[1, 2, 3, 4]]})
    [call] = fake.requests
    assert "x-functions-key" not in call.headers


def test_invoke_reports_a_missing_key_plainly(tmp_path):
    ctx = context(tmp_path)
    record(ctx)
    fake = Azure(key="")
    with pytest.raises(InvokeError, match="no default function key"):
        provider(fake).invoke(ctx=ctx, payload={"instances": [[1]]})


def test_status_shows_url_and_state(tmp_path):
    ctx = context(tmp_path)
    record(ctx)
    status = provider(Azure(state="Stopped")).status(ctx=ctx)
    assert (status.state, status.url, status.version) == ("stopped", URL, 3)
    assert status.details["plan"] == "FlexConsumption"
    assert provider(Azure()).status(ctx=ctx).state == "running"


def test_management_errors_carry_azures_message(tmp_path):
    ctx = context(tmp_path)
    record(ctx, {"url": URL, "app_id": APP_ID + "-gone"})
    with pytest.raises(InvokeError, match="404 NotFound: no site"):
        provider(Azure()).status(ctx=ctx)


def test_operations_need_a_deployment(tmp_path):
    with pytest.raises(NotDeployed):
        provider(Azure()).status(ctx=context(tmp_path))


def test_without_azure_identity_the_token_getter_says_what_to_install():
    try:
        import azure.identity  # noqa: F401
    except ImportError:
        with pytest.raises(ProviderUnavailable, match="azure-identity"):
            default_token_getter()
    else:
        assert callable(default_token_getter())


def test_offline_plan_from_a_bundle_warns_about_a_public_endpoint(tmp_path):
    ctx = context(tmp_path, "azure:\n  auth: none\n  plan: consumption\n")
    plan = provider(Azure()).plan(ctx=ctx, bundle=bundle(tmp_path))
    assert plan.kind == "offline" and plan.warnings == (PUBLIC_WARNING,)
    types = [r.type for r in plan.resources]
    assert types[0] == "slml:azure:FunctionModel"
    assert "azure-native:web:WebApp" in types
    sku = next(r for r in plan.resources if r.type == "azure-native:web:AppServicePlan")
    assert sku.inputs["sku"] == {"name": "Y1", "tier": "Dynamic"}


def test_default_auth_has_no_warning_and_flex_plan(tmp_path):
    ctx = context(tmp_path)
    plan = provider(Azure()).plan(ctx=ctx, bundle=bundle(tmp_path))
    assert plan.warnings == ()
    sku = next(r for r in plan.resources if r.type == "azure-native:web:AppServicePlan")
    assert sku.inputs["sku"] == {"name": "FC1", "tier": "FlexConsumption"}


def test_build_rejects_a_forbidden_env_before_building(tmp_path):
    ctx = context(tmp_path, "azure:\n  env:\n    WEBSITE_RUN_FROM_PACKAGE: '1'\n")
    with pytest.raises(ConfigError, match=r"azure\.env"):
        provider(Azure()).build(ctx=ctx)


def test_registered_under_the_entry_point():
    from slml.providers.registry import get_provider

    assert isinstance(get_provider("azure"), AzureProvider)


def test_consumption_plan_signs_the_package_for_the_configured_window(tmp_path):
    """Issue 11 D16: the window comes from azure.package_sas_days and today's month."""
    from datetime import UTC, datetime

    now = datetime(2026, 12, 17, 10, tzinfo=UTC)
    azure = AzureProvider(cli_available=lambda: False, clock=lambda: now)
    ctx = context(tmp_path, "azure:\n  plan: consumption\n  package_sas_days: 90\n")
    plan = azure.plan(ctx=ctx, bundle=bundle(tmp_path))
    assert "azure-native:web:WebApp" in [r.type for r in plan.resources]
    record(ctx, {"url": URL, "app_id": APP_ID, "package_sas_expiry": "2027-01-05T00:00:00Z"})
    assert any("expires 2027-01-05" in w for w in azure.warnings(ctx))
    record(ctx, {"url": URL, "app_id": APP_ID, "package_sas_expiry": "2027-12-01T00:00:00Z"})
    assert azure.warnings(ctx) == []
    with pytest.raises(ConfigError, match=r"azure\.package_sas_days"):
        context(tmp_path, "azure:\n  package_sas_days: 36500\n")


# -- rollouts: refused with the plan's reason, before any build ---------------------------
@pytest.mark.parametrize(("plan", "words"), [
    ("flex", "Flex Consumption (azure.plan: flex, the default) has no deployment slots"),
    ("consumption", "each deployment slot has its own function keys"),
])  # fmt: skip
@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_canary_and_shadow_are_refused_with_the_reason(tmp_path, plan, words, mode):
    from dataclasses import replace

    from slml.rollout import LiveVersion, RolloutRequest

    ctx = replace(context(tmp_path, f"azure:\n  plan: {plan}\n"), rollout=RolloutRequest(
        mode, 10, (LiveVersion(1, 100.0, "primary"),)))  # fmt: skip
    provider = AzureProvider(cli_available=lambda: True)
    for call in (lambda: provider.preflight(ctx=ctx),
                 lambda: provider.plan(ctx=ctx, bundle=bundle(tmp_path))):  # fmt: skip
        with pytest.raises(ProviderUnavailable, match=f"cannot deploy --{mode}") as err:
            call()
        assert words in err.value.message and "--provider gcp" in (err.value.hint or "")
