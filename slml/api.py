"""The pipeline as functions: slml.yaml → Config → Bundle → Plan / deployment.

Each function loads the config, applies ``provider``/``stage`` overrides, builds a
``ProviderContext`` and calls the provider. The CLI is a thin shell over these; they are
also the Python API (``slml.deploy("slml.yaml", provider="local")``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from slml import cost
from slml.config import CONFIG_FILE, ProjectConfig, load_config
from slml.errors import ConfigError, DeployError, IntegrityError, ProviderUnavailable
from slml.providers.base import (
    Bundle,
    DeployResult,
    NullReporter,
    Plan,
    Provider,
    ProviderContext,
    Reporter,
    Status,
)
from slml.providers.registry import get_provider
from slml.runtime.manifest import DIGEST_PREFIX
from slml.state import ProjectState

PathLike = str | Path


@dataclass(frozen=True)
class Session:
    """A provider and the context to call it with."""

    provider: Provider
    ctx: ProviderContext


def open_session(
    config: PathLike | None = None,
    *,
    provider: str | None = None,
    stage: str | None = None,
    reporter: Reporter | None = None,
    debug: bool = False,
    need_model: bool = False,
) -> Session:
    """Load slml.yaml (default ``./slml.yaml``) and pick the provider. Raises ConfigError,
    and with ``need_model`` also when the model artifact does not exist."""
    path = Path(config) if config is not None else Path.cwd() / CONFIG_FILE
    if path.is_dir():
        path = path / CONFIG_FILE
    project: ProjectConfig = load_config(path).with_overrides(provider=provider, stage=stage)
    ctx = ProviderContext(
        config=project,
        state=ProjectState(path.parent),
        reporter=reporter or NullReporter(),
        debug=debug,
    )
    if need_model:
        _check_model(ctx)
    return Session(provider=get_provider(project.provider), ctx=ctx)


def _check_model(ctx: ProviderContext) -> None:
    model = ctx.config.model
    if not model.exists():
        raise ConfigError(
            f"model: {model} does not exist",
            hint="save an artifact there first (slml.save_model or `slml save MODEL_FILE`)",
        )
    from slml.artifact.unchecked import check_served_method, refuse_unchecked

    refuse_unchecked(model)
    check_served_method(model, ctx.config.method)
    if ctx.config.model_digest is not None:  # cheap: the manifest lists every file's sha256
        from slml.artifact.store import manifest_digest

        check_model_digest(ctx.config, manifest_digest(model), what=f"the artifact at {model}")


def check_model_digest(config: ProjectConfig, digest: str, *, what: str) -> None:
    """Raise IntegrityError unless ``digest`` (hex) is the one slml.yaml pins, if any."""
    pinned = config.model_digest
    if pinned is not None and pinned != DIGEST_PREFIX + digest:
        raise IntegrityError(
            f"{what} has digest {DIGEST_PREFIX}{digest}, which does not match model_digest "
            f"{pinned} in slml.yaml: refusing to build or deploy it",
            hint="if you saved a new model version yourself, pin the digest `slml save` "
            "printed; otherwise the artifact was changed by someone else",
        )


def _build(session: Session) -> Bundle:
    """Build, then check the built artifact is the pinned one (it may have been swapped
    after the first check)."""
    bundle = session.provider.build(ctx=session.ctx)
    check_model_digest(session.ctx.config, bundle.model_sha256, what="the model in the bundle")
    return bundle


def build(config: PathLike | None = None, **options: Any) -> Bundle:
    """Build the bundle for the selected provider. No cloud calls."""
    session = open_session(config, need_model=True, **options)
    return _build(session)


def preview(config: PathLike | None = None, **options: Any) -> Plan:
    """Build, then show what deploy would do (offline plan when Pulumi is missing),
    with the estimated monthly cost at slml.yaml's ``traffic:`` (``Plan.cost``)."""
    session = open_session(config, need_model=True, **options)
    bundle = _build(session)
    plan = session.provider.plan(ctx=session.ctx, bundle=bundle)
    return replace(plan, cost=estimate_cost(session.ctx, bundle))


def estimate_cost(ctx: ProviderContext, bundle: Bundle) -> cost.CostEstimate | None:
    """The monthly cost of deploying ``bundle`` with ``ctx``'s config; None for local.
    The duration per request: ``traffic.avg_duration_ms``, else the local deployment's
    logged median predict latency, else the stated default, plus the platform's overhead."""
    provider, traffic = ctx.config.provider, ctx.config.traffic
    if provider not in cost.ESTIMATORS:
        return None
    requests = traffic.requests_per_month if traffic else cost.DEFAULT_REQUESTS
    measured = None if traffic and traffic.avg_duration_ms else _logged_predict_ms(ctx)
    if traffic and traffic.avg_duration_ms:
        duration, add, source = traffic.avg_duration_ms, False, "traffic.avg_duration_ms"
    elif measured is not None:
        duration, add, source = measured, True, "median predict latency in the local log"
    else:
        duration, add = cost.DEFAULT_PREDICT_MS, True
        source = "assumed predict time: set traffic.avg_duration_ms or deploy locally first"
    if traffic is None:
        source += f"; no traffic: in slml.yaml, so {requests:,} requests/month assumed"
    usage = cost.Usage(
        requests_per_month=requests, duration_ms=duration, add_overhead=add, source=source,
        storage_bytes=bundle.size.zipped or bundle.size.unzipped,
    )  # fmt: skip
    return cost.estimate(provider, ctx.config.section(provider).model_dump(), usage)


def _logged_predict_ms(ctx: ProviderContext, *, tail_bytes: int = 1 << 20) -> float | None:
    """The median predict latency in the stage's local deployment log (its last MB)."""
    try:
        record = ctx.state.read_record(ctx.stage, "local")
        if not record or not record.get("log"):
            return None
        with open(record["log"], "rb") as log:
            log.seek(max(log.seek(0, 2) - tail_bytes, 0))
            text = log.read().decode("utf-8", errors="replace")
    except (OSError, DeployError):
        return None
    return cost.logged_predict_ms(text.splitlines())


def deploy(config: PathLike | None = None, **options: Any) -> DeployResult:
    """Build and deploy; returns the endpoint. The previous deployment keeps serving
    if this one fails."""
    session = open_session(config, need_model=True, **options)
    preflight = getattr(session.provider, "preflight", None)
    if preflight is not None:  # e.g. no Pulumi CLI: say so before a long build
        preflight(ctx=session.ctx)
    return session.provider.deploy(ctx=session.ctx, bundle=_build(session))


def rollback(
    config: PathLike | None = None, *, version: int | None = None, **options: Any
) -> DeployResult:
    """Redeploy an earlier version (default: the one before the current) as a new
    version. Raises ProviderUnavailable where the provider keeps no earlier bundles."""
    session = open_session(config, **options)
    method = getattr(session.provider, "rollback", None)
    if method is None:
        raise ProviderUnavailable(
            f"the {session.ctx.config.provider} provider cannot roll back yet",
            hint="save the earlier model version again and run `slml deploy`",
        )
    return method(ctx=session.ctx, version=version)


def destroy(config: PathLike | None = None, *, force: bool = False, **options: Any) -> None:
    """Tear the deployment down (idempotent). ``force``: also when the deployment record
    is unreadable (the provider stops what it can find and sets the record aside)."""
    session = open_session(config, **options)
    if force:
        session.provider.destroy(ctx=session.ctx, force=True)
    else:
        session.provider.destroy(ctx=session.ctx)


def status(config: PathLike | None = None, **options: Any) -> Status:
    session = open_session(config, **options)
    return session.provider.status(ctx=session.ctx)


def invoke(payload: dict[str, Any], config: PathLike | None = None, **options: Any) -> dict:
    """Send one prediction request to the deployed endpoint; returns its JSON answer."""
    session = open_session(config, **options)
    return session.provider.invoke(ctx=session.ctx, payload=payload)


def logs(
    config: PathLike | None = None, *, lines: int = 100, follow: bool = False, **options: Any
) -> Iterator[str]:
    session = open_session(config, **options)
    return session.provider.logs(ctx=session.ctx, lines=lines, follow=follow)


def _state(config: PathLike | None) -> ProjectState:
    path = Path(config) if config is not None else Path.cwd() / CONFIG_FILE
    return ProjectState(path if path.is_dir() else path.parent)


def deployments(config: PathLike | None = None) -> list[dict[str, Any]]:
    """Every recorded deployment of the project (all stages and providers)."""
    return _state(config).records()


def history(config: PathLike | None = None) -> list[dict[str, Any]]:
    """Every deploy, failed deploy, rollback and destroy of the project, oldest first."""
    return _state(config).history()
