"""The pipeline as functions: slml.yaml → Config → Bundle → Plan / deployment.

Each function loads the config, applies ``provider``/``stage`` overrides, builds a
``ProviderContext`` and calls the provider. The CLI is a thin shell over these; they are
also the Python API (``slml.deploy("slml.yaml", provider="local")``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from slml import cost
from slml.bundle.sources import use_sources
from slml.config import CONFIG_FILE, ProjectConfig, load_config
from slml.config.sections import GuardConfig
from slml.errors import (
    ConfigError,
    DeployError,
    IntegrityError,
    NotDeployed,
    UsageError,
)
from slml.guard import Judgement, watch
from slml.ledger import DeploymentRecord, HistoryEvent, Ledger, Live, VersionInfo
from slml.providers.base import (
    Bundle,
    DeployResult,
    NullReporter,
    Plan,
    ProviderBase,
    ProviderContext,
    Reporter,
    Status,
)
from slml.providers.registry import get_provider
from slml.rollout import LiveVersion, RolloutRequest, dropped, promoted
from slml.runtime.manifest import DIGEST_PREFIX
from slml.state import ProjectState

PathLike = str | Path


@dataclass(frozen=True)
class Session:
    """A provider and the context to call it with."""

    provider: ProviderBase
    ctx: ProviderContext


def open_session(
    config: PathLike | None = None,
    *,
    provider: str | None = None,
    stage: str | None = None,
    reporter: Reporter | None = None,
    debug: bool = False,
    need_model: bool = False,
    canary: float | None = None,
    shadow: bool = False,
) -> Session:
    """Load slml.yaml (default ``./slml.yaml``) and pick the provider. Raises ConfigError,
    and with ``need_model`` also when the model artifact does not exist."""
    path = Path(config) if config is not None else Path.cwd() / CONFIG_FILE
    if path.is_dir():
        path = path / CONFIG_FILE
    project: ProjectConfig = load_config(path).with_overrides(provider=provider, stage=stage)
    use_sources(project.packages, base_dir=path.parent.resolve())  # every uv call that follows
    ctx = ProviderContext(
        config=project,
        state=ProjectState(path.parent),
        reporter=reporter or NullReporter(),
        debug=debug,
    )
    if canary is not None or shadow:
        ctx = replace(ctx, rollout=rollout_request(ctx, canary=canary, shadow=shadow))
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


def rollout_request(ctx: ProviderContext, *, canary: float | None, shadow: bool
                    ) -> RolloutRequest:  # fmt: skip
    """What ``--canary P`` / ``--shadow`` ask, with what serves the stage now. A canary
    of 0 means ``rollout.canary_percent``. Raises UsageError for both at once."""
    if canary is not None and shadow:
        raise UsageError("--canary and --shadow are two different rollouts; pick one")
    percent = canary or ctx.config.rollout.canary_percent
    if not 0 < percent < 100:
        raise UsageError(f"--canary {percent:g}: the share must be above 0 and below 100")
    record = _read_record(ctx)
    live = record.live() if record else ()
    return RolloutRequest(mode="shadow" if shadow else "canary", percent=percent, live=live)


def _read_record(ctx: ProviderContext) -> DeploymentRecord | None:
    return Ledger(ctx.state).read(ctx.stage, ctx.config.provider)


def deploy(config: PathLike | None = None, **options: Any) -> DeployResult:
    """Build and deploy; returns the endpoint. The previous deployment keeps serving
    if this one fails. ``canary=P`` / ``shadow=True`` deploy beside the live version
    (providers without that raise ProviderUnavailable saying why)."""
    session = open_session(config, need_model=True, **options)
    # a rollout the target cannot serve, or no Pulumi CLI: say so before a long build
    session.provider.check_rollout(session.ctx)
    session.provider.preflight(ctx=session.ctx)
    bundle = _build(session)
    with session.ctx.state.lock(on_wait=session.ctx.reporter.step):
        return session.provider.deploy(ctx=session.ctx, bundle=bundle)


def _shift(session: Session, traffic: tuple[LiveVersion, ...], event: str, *,
           figures: dict[str, Any] | None = None, error: str | None = None) -> DeployResult:
    """Set the stage's traffic and record why in the history."""
    ctx = session.ctx
    with ctx.state.lock(on_wait=ctx.reporter.step):
        result = session.provider.shift(ctx=ctx, traffic=traffic)
        Ledger(ctx.state).append(HistoryEvent(
            event=event, stage=ctx.stage, provider=ctx.config.provider, version=result.version,
            url=result.url, traffic=[Live.of(t) for t in result.traffic], figures=figures,
            error=error))  # fmt: skip
    return result


def _live(session: Session) -> tuple[LiveVersion, ...]:
    record = _read_record(session.ctx)
    if record is None:
        raise NotDeployed(f"nothing is deployed in stage {session.ctx.stage} "
                          f"({session.ctx.config.provider})", hint="deploy first: `slml deploy`")
    return record.live()


def promote(config: PathLike | None = None, *, from_stage: str | None = None,
            to_stage: str | None = None, **options: Any) -> DeployResult:
    """Give the canary (or shadow) 100 percent and retire the old primary. With
    ``from_stage``/``to_stage``: deploy to ``to_stage`` exactly the bundle (same
    artifact digest and dependency lock) serving ``from_stage``, with its own config."""
    if from_stage is not None or to_stage is not None:
        return promote_stage(config, from_stage=from_stage, to_stage=to_stage, **options)
    session = open_session(config, **options)
    live = _live(session)
    try:
        traffic = promoted(live)
    except ValueError:
        raise DeployError(f"stage {session.ctx.stage} has no canary or shadow to promote",
                          hint="deploy one with `slml deploy --canary 10`") from None
    return _shift(session, traffic, "promote")


def promote_stage(config: PathLike | None = None, *, from_stage: str | None,
                  to_stage: str | None, **options: Any) -> DeployResult:
    """``slml promote --from dev --to prod``. Raises UsageError without both stages,
    NotDeployed when the source serves nothing, IntegrityError when what would be
    deployed is not what the source serves."""
    if not from_stage or not to_stage or from_stage == to_stage:
        raise UsageError("promote between stages needs --from STAGE and --to STAGE, "
                         "two different ones")
    options.pop("stage", None)
    source = open_session(config, stage=from_stage, **options)
    record = _read_record(source.ctx)
    if record is None:
        raise NotDeployed(f"stage {from_stage} serves nothing on {source.ctx.config.provider}",
                          hint=f"deploy to {from_stage} first")
    info = record.info(record.version)
    target = open_session(config, stage=to_stage, **options)
    bundle = _source_bundle(source, target, record.version, info)
    wanted = (info.model_sha256, info.lock_hash) if info else (record.model_sha256,
                                                               record.lock_hash)  # fmt: skip
    if (bundle.model_sha256, bundle.lock_hash) != wanted:
        raise IntegrityError(
            f"the bundle for {to_stage} (model {bundle.model_sha256[:12]}, lock "
            f"{bundle.lock_hash[:12]}) is not the one serving {from_stage} (model "
            f"{str(wanted[0])[:12]}, lock {str(wanted[1])[:12]}): refusing to promote",
            hint=f"deploy {from_stage} again, or the artifact it serves is gone")
    check_model_digest(target.ctx.config, bundle.model_sha256, what=f"the model of {from_stage}")
    target.ctx.reporter.step(f"promoting version {record.version} of {from_stage} to {to_stage}")
    with target.ctx.state.lock(on_wait=target.ctx.reporter.step):
        return target.provider.deploy(ctx=target.ctx, bundle=bundle)


def _source_bundle(source: Session, target: Session, version: int,
                   info: VersionInfo | None) -> Bundle:  # fmt: skip
    kept = source.provider.kept_bundle(ctx=source.ctx, version=version)
    if kept is not None:  # the very bundle copy the source runs
        return kept
    artifact = info.artifact if info else None
    if not artifact or not Path(artifact).is_dir():
        raise DeployError(f"the artifact serving {source.ctx.stage} is not archived here",
                          hint=f"deploy {source.ctx.stage} again with this slml")
    again = replace(target.ctx, config=target.ctx.config.model_copy(
        update={"model": Path(artifact)}))  # fmt: skip
    return target.provider.build(ctx=again)


def rollback(
    config: PathLike | None = None, *, version: int | None = None, **options: Any
) -> DeployResult:
    """With a canary or shadow live (and no ``version``): drop it, all traffic back to
    the primary. Otherwise redeploy an earlier version (default: the one before the
    current) as a new version. Raises ProviderUnavailable where the provider keeps no
    earlier bundles."""
    session = open_session(config, **options)
    with contextlib.suppress(NotDeployed, DeployError):
        live = _live(session) if version is None else ()
        if len(live) > 1:
            return _shift(session, dropped(live), "rollback")
    with session.ctx.state.lock(on_wait=session.ctx.reporter.step):
        return session.provider.rollback(ctx=session.ctx, version=version)


def guard(config: PathLike | None = None, *, thresholds: GuardConfig | None = None,
          auto_promote: bool | None = None, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep, **options: Any) -> Judgement:
    """Watch the live canary for the guard's window, judging it from its own figures
    (``provider.version_metrics``): breached → roll it back (history says why, with the
    figures); held → promote it when ``auto_promote``. Blocking."""
    session = open_session(config, **options)
    rollout = session.ctx.config.rollout
    limits = thresholds or rollout.guard or GuardConfig()
    canary = next((v for v in _live(session) if v.role == "canary"), None)
    if canary is None:
        raise DeployError(f"stage {session.ctx.stage} has no canary to guard",
                          hint="deploy one with `slml deploy --canary 10 --guard`")
    provider = session.provider
    verdict = watch(lambda: provider.version_metrics(ctx=session.ctx, version=canary.version,
                                                     window=limits.window),
                    limits, clock=clock, sleep=sleep, report=session.ctx.reporter.detail)
    if verdict.outcome == "breached":
        _shift(session, dropped(_live(session)), "guard-rollback",
               figures=verdict.metrics.to_json(), error=verdict.reason)
    elif verdict.outcome == "held":
        _append(session, "guard-held", canary.version, verdict)
        if auto_promote if auto_promote is not None else rollout.auto_promote:
            _shift(session, promoted(_live(session)), "promote", figures=verdict.metrics.to_json())
    return verdict


def _append(session: Session, event: str, version: int, verdict: Judgement) -> None:
    ctx = session.ctx
    with ctx.state.lock(on_wait=ctx.reporter.step):
        Ledger(ctx.state).append(HistoryEvent(event=event, stage=ctx.stage,
                                              provider=ctx.config.provider, version=version,
                                              figures=verdict.metrics.to_json()))  # fmt: skip


def destroy(config: PathLike | None = None, *, force: bool = False, **options: Any) -> None:
    """Tear the deployment down (idempotent). ``force``: also when the deployment record
    is unreadable (the provider stops what it can find and sets the record aside)."""
    session = open_session(config, **options)
    with session.ctx.state.lock(on_wait=session.ctx.reporter.step):
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
