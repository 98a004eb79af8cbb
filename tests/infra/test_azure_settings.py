"""The pure Azure helpers: settings per plan, forbidden ones, site config, names."""

from __future__ import annotations

import pytest

from slml.errors import ConfigError
from slml.infra.azure_settings import (
    FLEX_FORBIDDEN_SETTINGS,
    app_settings,
    check_settings,
    plan_sku,
    site_config_fields,
    storage_account_name,
)


def names(pairs):
    return [name for name, _ in pairs]


def test_flex_settings_hold_only_the_storage_connection_and_user_env():
    pairs = app_settings("flex", storage_connection="conn", env={"LOG_LEVEL": "debug"})
    assert pairs == [("AzureWebJobsStorage", "conn"), ("LOG_LEVEL", "debug")]
    assert not set(names(pairs)) & FLEX_FORBIDDEN_SETTINGS


def test_consumption_settings_name_the_runtime_and_the_package():
    pairs = dict(app_settings("consumption", storage_connection="conn", package_url="https://b/p"))
    assert pairs == {
        "AzureWebJobsStorage": "conn",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "FUNCTIONS_EXTENSION_VERSION": "~4",
        "WEBSITE_RUN_FROM_PACKAGE": "https://b/p",
    }


@pytest.mark.parametrize(
    "name", ["FUNCTIONS_WORKER_RUNTIME", "WEBSITE_CONTENTSHARE", "website_node_default_version"]
)
def test_the_validator_refuses_what_flex_forbids_case_insensitively(name):
    with pytest.raises(ConfigError, match="cannot be set on the flex plan"):
        check_settings("flex", ["AzureWebJobsStorage", name])


def test_user_env_cannot_sneak_a_forbidden_setting_into_flex():
    with pytest.raises(ConfigError, match=r"azure\.env: SCM_DO_BUILD_DURING_DEPLOYMENT"):
        app_settings("flex", storage_connection="c", env={"SCM_DO_BUILD_DURING_DEPLOYMENT": "1"})


def test_user_env_cannot_override_managed_settings():
    with pytest.raises(ConfigError, match="managed by slml"):
        app_settings("consumption", storage_connection="c", package_url="u",
                     env={"AzureWebJobsStorage": "other"})  # fmt: skip


def test_consumption_refuses_the_content_share_linux_does_not_support():
    with pytest.raises(ConfigError, match="WEBSITE_CONTENTSHARE"):
        app_settings("consumption", storage_connection="c", package_url="u",
                     env={"WEBSITE_CONTENTSHARE": "x"})  # fmt: skip


def test_package_url_belongs_to_consumption_only():
    with pytest.raises(ConfigError, match="needs the package"):
        app_settings("consumption", storage_connection="c")
    with pytest.raises(ConfigError, match="blob container"):
        app_settings("flex", storage_connection="c", package_url="u")


def test_plan_skus():
    flex, consumption = plan_sku("flex"), plan_sku("consumption")
    assert (flex.name, flex.tier, flex.kind, flex.reserved) == ("FC1", "FlexConsumption",
                                                                "functionapp", True)  # fmt: skip
    assert (consumption.name, consumption.tier) == ("Y1", "Dynamic")


def test_site_config_sets_the_python_stack_only_on_consumption():
    assert site_config_fields("consumption", python_version="3.12")["linux_fx_version"] == (
        "Python|3.12"
    )
    assert "linux_fx_version" not in site_config_fields("flex", python_version="3.12")


def test_storage_account_logical_name_is_short_lowercase_alphanumeric():
    name = storage_account_name("my-very-long-project-name", "prod")
    assert name.isalnum() and name.islower() and len(name) <= 16


@pytest.mark.parametrize("plan", ["flex", "consumption"])
def test_the_insights_connection_string_is_sent_on_both_plans_and_managed(plan):
    url = "https://b/p" if plan == "consumption" else None
    pairs = dict(app_settings(plan, storage_connection="c", package_url=url,
                              insights_connection="InstrumentationKey=k"))  # fmt: skip
    assert pairs["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "InstrumentationKey=k"
    with pytest.raises(ConfigError, match="managed by slml"):
        app_settings(plan, storage_connection="c", package_url=url,
                     env={"applicationinsights_connection_string": "x"})  # fmt: skip


def test_package_sas_window_is_bounded_and_stable_within_a_month():
    """Issue 11 D16: a bounded SAS whose URL changes at most monthly when nothing else does."""
    from datetime import UTC, datetime, timedelta, timezone

    from slml.infra.azure_settings import package_sas_window

    early = package_sas_window(datetime(2026, 12, 1, 0, 0, tzinfo=UTC), 365)
    late = package_sas_window(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 365)
    assert early == late == ("2026-12-01T00:00:00Z", "2027-12-01T00:00:00Z")
    east = timezone(timedelta(hours=9))  # already January in Tokyo: the window is UTC
    assert package_sas_window(datetime(2027, 1, 1, 5, tzinfo=east), 90)[0] == (
        "2026-12-01T00:00:00Z"
    )
    for days in (0, 59, 731, 365 * 73):
        with pytest.raises(ValueError, match="outside 60-730"):
            package_sas_window(datetime(2026, 12, 1, tzinfo=UTC), days)
