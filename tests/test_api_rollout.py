"""The portable rollout interface's refusals, before any build or server."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml import api
from slml.config import ProjectConfig
from slml.errors import ProviderUnavailable, UsageError
from slml.providers.base import ProviderContext
from slml.state import ProjectState


class _NoShift:
    name = "plain"


def _ctx(tmp_path: Path) -> ProviderContext:
    config = ProjectConfig(name="demo", model=tmp_path / "model")
    return ProviderContext(config=config, state=ProjectState(tmp_path))


def test_a_provider_without_shift_refuses_a_rollout_with_the_reason(tmp_path: Path) -> None:
    session = api.Session(provider=_NoShift(), ctx=_ctx(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ProviderUnavailable, match="cannot run several versions side by side"):
        api._shifter(session)


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
