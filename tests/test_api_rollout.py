"""The portable rollout interface's refusals, before any build or server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from slml import api
from slml.config import ProjectConfig
from slml.errors import ProviderUnavailable, UsageError
from slml.providers.base import ProviderBase, ProviderContext
from slml.rollout import RolloutRequest
from slml.state import ProjectState


class _NoShift(ProviderBase):
    """Only what a provider must have: every optional hook keeps ProviderBase's default."""

    name = "plain"


def _ctx(tmp_path: Path) -> ProviderContext:
    config = ProjectConfig(name="demo", model=tmp_path / "model")
    return ProviderContext(config=config, state=ProjectState(tmp_path))


def test_a_provider_without_shift_refuses_a_rollout_with_the_reason(tmp_path: Path) -> None:
    provider, ctx = _NoShift(), _ctx(tmp_path)
    provider.check_rollout(ctx)  # a plain replacement is fine
    canary = replace(ctx, rollout=RolloutRequest(mode="canary", percent=10.0))
    with pytest.raises(ProviderUnavailable, match="plain provider cannot run several versions "
                                                  "side by side"):  # fmt: skip
        provider.check_rollout(canary)
    with pytest.raises(ProviderUnavailable, match="side by side"):
        provider.shift(ctx=ctx, traffic=())


def test_the_optional_hooks_default_to_a_clear_refusal(tmp_path: Path) -> None:
    provider, ctx = _NoShift(), _ctx(tmp_path)
    provider.preflight(ctx=ctx)
    assert provider.kept_bundle(ctx=ctx, version=1) is None
    refusals = [
        (lambda: provider.rollback(ctx=ctx), "cannot roll back yet"),
        (lambda: provider.version_metrics(ctx=ctx, version=2, window=60.0), "no guard"),
        (lambda: provider.status(ctx=ctx), "cannot report a status"),
        (lambda: provider.invoke(ctx=ctx, payload={}), "cannot invoke"),
        (lambda: list(provider.logs(ctx=ctx)), "cannot show logs"),
    ]
    for call, words in refusals:
        with pytest.raises(ProviderUnavailable, match=words):
            call()


def test_canary_share_and_modes(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    request = api.rollout_request(ctx, canary=0, shadow=False)  # 0: slml.yaml's default
    assert (request.mode, request.percent, request.live) == ("canary", 10.0, ())
    assert api.rollout_request(ctx, canary=None, shadow=True).mode == "shadow"
    with pytest.raises(UsageError, match="pick one"):
        api.rollout_request(ctx, canary=5, shadow=True)
    with pytest.raises(UsageError, match="above 0 and below 100"):
        api.rollout_request(ctx, canary=100, shadow=False)


def test_promote_between_stages_needs_two_stages(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--from STAGE and --to STAGE"):
        api.promote_stage(tmp_path, from_stage="dev", to_stage="dev")
