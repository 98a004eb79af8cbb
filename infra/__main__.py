"""The standalone Pulumi project: ``pulumi preview`` / ``pulumi up`` here deploy the
model described by slml.yaml with the same component and program ``slml deploy`` uses.

Config (``pulumi config set``): ``slml:config`` (path to slml.yaml, default
``../slml.yaml``), ``slml:provider`` (default ``aws``), ``slml:stage`` (default: the
file's ``stage``). The bundle is built first, locally, exactly as ``slml build`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi

from slml.config import load_config
from slml.providers.base import Bundle, NullReporter, ProviderContext
from slml.providers.pulumi_base import PulumiProvider
from slml.providers.registry import get_provider
from slml.state import ProjectState

HERE = Path(__file__).resolve().parent


def make_context(config_path: Path, *, provider: str, stage: str | None) -> ProviderContext:
    config = load_config(config_path).with_overrides(provider=provider, stage=stage)
    return ProviderContext(
        config=config, state=ProjectState(config_path.parent), reporter=NullReporter()
    )


def run(
    config_path: Path,
    *,
    provider_name: str = "aws",
    stage: str | None = None,
    build: Callable[[PulumiProvider, ProviderContext], Bundle] | None = None,
) -> Any:
    """Build the bundle and run the provider's program in the current Pulumi program."""
    provider = get_provider(provider_name)
    if not isinstance(provider, PulumiProvider):
        raise SystemExit(f"slml:provider {provider_name!r} is not deployed with Pulumi")
    ctx = make_context(config_path, provider=provider_name, stage=stage)
    bundle = build(provider, ctx) if build else provider.build(ctx=ctx)
    provider.program(ctx=ctx, bundle=bundle)()
    return ctx


if __name__ == "__main__":
    cfg = pulumi.Config("slml")
    run(
        (HERE / (cfg.get("config") or "../slml.yaml")).resolve(),
        provider_name=cfg.get("provider") or "aws",
        stage=cfg.get("stage"),
    )
