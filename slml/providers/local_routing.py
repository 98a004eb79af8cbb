"""How a local stage's record describes its live versions, and the router behind them.

One version alone is served as before: its server sits on the stable port itself
(blue/green via SO_REUSEPORT). With a canary or a shadow, every version's server runs
off the stable port (its admin port only) and the stage's router (``local_router``)
holds the stable port and forwards each request; the record's ``traffic`` says how.
Once a stage has a router it keeps it: later deploys, promotions and rollbacks only
rewrite the record, which the router re-reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx

from slml.errors import DeployError, ProviderUnavailable
from slml.ledger import DeploymentRecord, Live, VersionInfo
from slml.providers import local_process as proc
from slml.providers import local_stage as stage_state
from slml.providers.base import ProviderContext
from slml.rollout import LiveVersion, RolloutRequest, VersionMetrics, split
from slml.state import now_iso, who

PROVIDER = "local"
ROUTER_TIMEOUT = 30.0
StartKept = Callable[[ProviderContext, DeploymentRecord, list[int]], VersionInfo]


def has_router(record: DeploymentRecord | None) -> bool:
    return bool(record and record.router_pid and proc.is_our_server(record.router_pid))


def _record(ctx: ProviderContext, primary: VersionInfo, infos: list[VersionInfo],
            traffic: tuple[LiveVersion, ...], *, url: str, port: int,
            router: tuple[int, int] | None) -> DeploymentRecord:  # fmt: skip
    pids = [i.pid for i in infos if i.pid] + ([router[0]] if router else [])
    return DeploymentRecord(
        name=ctx.name, stage=ctx.stage, provider=PROVIDER, version=primary.version, url=url,
        host=ctx.config.local.host, port=port, pid=primary.pid, pgid=primary.pgid,
        admin_port=primary.admin_port, model=primary.model, model_sha256=primary.model_sha256,
        lock_hash=primary.lock_hash, bundle=primary.bundle, env=primary.env, log=primary.log,
        deployed_at=now_iso(), deployed_by=who(), traffic=[Live.of(t) for t in traffic],
        versions={str(i.version): i for i in infos}, pids=pids,
        router_pid=router[0] if router else None, router_admin_port=router[1] if router else None,
        sticky_header=ctx.config.rollout.sticky_header,
    )  # fmt: skip


def single_record(ctx: ProviderContext, info: VersionInfo, shared: int | None) -> DeploymentRecord:
    """The record of one version alone on the stable port ``shared``."""
    port = shared if shared is not None else int(info.port or 0)
    url = f"http://{proc.connect_host(ctx.config.local.host)}:{port}"
    traffic = (LiveVersion(info.version, 100.0, "primary", str(info.admin_port)),)
    return _record(ctx, info, [info], traffic, url=url, port=port, router=None)


def routed_record(
    ctx: ProviderContext, old: DeploymentRecord | None, new: VersionInfo,
    rollout: RolloutRequest, *, start: StartKept, started: list[int],
) -> DeploymentRecord:  # fmt: skip
    """The record with ``new`` placed behind the router as ``rollout`` says, starting
    the router (and a standby copy of the primary) when the stage has none yet."""
    if old is None:
        raise DeployError("a rollout needs a live version", hint="deploy first: `slml deploy`")
    if has_router(old):
        router = (int(old.router_pid or 0), int(old.router_admin_port or 0))
        primary = old.info(old.version) or start(ctx, old, started)
    else:
        primary = start(ctx, old, started)
        router = start_router(ctx, old.port or 0, started)
    ref = str(new.admin_port)
    current = LiveVersion(primary.version, 100.0, "primary", str(primary.admin_port))
    traffic = split(current, new.version, rollout.mode, rollout.percent, ref)
    top = new if rollout.mode == "replace" else primary
    infos = [primary, new] if rollout.mode != "replace" else [new]
    return _record(ctx, top, infos, traffic, url=old.url, port=old.port or 0, router=router)


def start_router(ctx: ProviderContext, port: int, started: list[int]) -> tuple[int, int]:
    """Start the stage's router on the stable ``port`` beside whatever serves it now;
    returns its pid and admin port once it answers its health check."""
    stage_dir = ctx.state.stage_dir(PROVIDER, ctx.stage)
    log = stage_dir / "router.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    offset = log.stat().st_size
    record = ctx.state.record_path(ctx.stage, PROVIDER)
    command = proc.router_command(record=record, host=ctx.config.local.host, port=port,
                                  capture_dir=stage_dir)  # fmt: skip
    pid = proc.spawn(command, cwd=stage_dir, env=dict(os.environ), log_path=log,
                     marker=stage_state.marker(ctx), control=True)  # fmt: skip
    started.append(pid)
    ctx.reporter.detail(f"router pid {pid} on port {port}, log {log}")
    up = proc.wait_healthy(pid, log_path=log, offset=offset, host="127.0.0.1",
                           timeout=ROUTER_TIMEOUT)  # fmt: skip
    return up.pid, up.admin_port


def shifted(ctx: ProviderContext, old: DeploymentRecord,
            traffic: tuple[LiveVersion, ...]) -> DeploymentRecord:  # fmt: skip
    """``old`` with ``traffic`` among its live versions; the primary's fields follow
    the new primary. Raises DeployError naming a version that is not live."""
    missing = [t.version for t in traffic if old.info(t.version) is None]
    if missing:
        live = ", ".join(str(t.version) for t in old.traffic)
        raise DeployError(f"version(s) {missing} are not live in stage {ctx.stage} (live: {live})",
                          hint="`slml status` lists the live versions")
    primary_live = next((t for t in traffic if t.role == "primary"), None)
    if primary_live is None:
        raise DeployError("the new traffic has no primary version")
    if not has_router(old) and len(traffic) > 1:
        raise DeployError("the stage has no router to split traffic",
                          hint="deploy with --canary or --shadow first")
    infos = [i for t in traffic if (i := old.info(t.version)) is not None]
    primary = old.info(primary_live.version)
    assert primary is not None
    refs = tuple(LiveVersion(t.version, t.percent, t.role, str(old.info(t.version).admin_port))  # type: ignore[union-attr]
                 for t in traffic)  # fmt: skip
    router = (int(old.router_pid), int(old.router_admin_port or 0)) if old.router_pid else None
    record = _record(ctx, primary, infos, refs, url=old.url, port=old.port or 0, router=router)
    if not router:  # one version on the stable port: it is the one that was there
        record.pid, record.admin_port = old.pid, old.admin_port
    return record


def plan_steps(old: DeploymentRecord | None, version: int, rollout: RolloutRequest) -> list[str]:
    """``slml preview --canary/--shadow`` in words: the traffic change."""
    if old is None:
        return [f"refuse: --{rollout.mode} needs a live version; deploy first"]
    before = ", ".join(f"v{t.version} {t.percent:g}% {t.role}" for t in old.traffic)
    after = split(LiveVersion(old.version, 100.0, "primary"), version, rollout.mode,
                  rollout.percent)  # fmt: skip
    shown = ", ".join(f"v{t.version} {t.percent:g}% {t.role}" for t in after)
    steps = []
    if not has_router(old):
        steps.append(f"start version {old.version} again off the shared port and a router "
                     f"on port {old.port}; the old server of version {old.version} leaves it")
    steps.append(f"traffic: {before} -> {shown}")
    if rollout.mode == "shadow":
        steps.append("the shadow's answers are captured to .slml/local/<stage>/"
                     f"shadow-v{version}.jsonl, never returned")
    return steps


def router_metrics(record: DeploymentRecord, window: float, *,
                   client: httpx.Client) -> dict[str, Any]:  # fmt: skip
    """The router's metrics document (``GET /metrics``). Raises ProviderUnavailable when
    the stage has no router."""
    if not has_router(record):
        raise ProviderUnavailable(
            f"stage {record.stage} serves one version without a router: no per-version "
            "metrics", hint="deploy a candidate with --canary or --shadow first")
    with client:
        response = client.get(f"http://127.0.0.1:{record.router_admin_port}/metrics",
                              params={"window": window})  # fmt: skip
    return dict(response.json())


def metrics(record: DeploymentRecord, version: int, window: float, *,
            client: httpx.Client) -> VersionMetrics:  # fmt: skip
    """One version's figures from the router."""
    try:
        document = router_metrics(record, window, client=client)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"the router of stage {record.stage} does not answer: {exc}",
                                  hint="`slml status` tells whether it runs") from None
    entry = document.get("versions", {}).get(str(version)) or {}
    seen = entry.get("window") or {}
    return VersionMetrics(version=version, window_s=window, requests=int(seen.get("requests", 0)),
                          errors=int(seen.get("errors_5xx", 0)), p50_ms=seen.get("p50_ms"),
                          p99_ms=seen.get("p99_ms"),
                          errors_by_code=entry.get("errors") or {})  # fmt: skip
