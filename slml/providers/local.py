"""The local provider: the built bundle runs as a background server on this machine.

Each deploy copies the bundle to ``.slml/local/<stage>/v<N>/`` (so rebuilding never
disturbs a running server) and runs it in the bundle's own environment, not slml's.
Redeploys are blue/green: the new server starts in standby (its admin port only), must
pass its health check, is then promoted onto the shared port (SO_REUSEPORT), the record
switches to it, and the old server stops. A failed or interrupted deploy stops only the
new server; the old record and server stay. Even a deploy killed with SIGKILL leaves no
server outside the record: each server serves only while the record names it once its
deployer is gone (``slml.runtime.control``), and the next deploy or destroy stops every
server of the stage the record does not name, found by the marker it carries.
Every write to ``.slml/`` happens under the project lock.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import httpx

from slml.bundle import cache_dir as default_cache_dir
from slml.bundle.env import ensure_env
from slml.bundle.local import (
    LOCK_FILE,
    build_local_bundle,
    bundle_lock,
    load_bundle,
    read_bundle_info,
)
from slml.bundle.lock import Target, read_lock
from slml.bundle.served_env import served_env
from slml.capture import capture_env, requirements_with_sink
from slml.config import LocalConfig
from slml.errors import DeployError, NotDeployed, ProviderUnavailable
from slml.ledger import DeploymentRecord, HistoryEvent, Ledger, VersionInfo
from slml.pipeline import DeploymentState
from slml.providers import http_answer
from slml.providers import local_process as proc
from slml.providers import local_routing as routing
from slml.providers import local_stage as stage_state
from slml.providers.base import (
    Bundle,
    DeployResult,
    Plan,
    ProviderBase,
    ProviderContext,
    Status,
)
from slml.rollout import LiveVersion, RolloutRequest, VersionMetrics
from slml.runtime.manifest import read_manifest
from slml.state import RecordUnreadable, now_iso

PROVIDER = "local"
KEEP_VERSIONS = 3
LOG_MAX_BYTES = 10 * 1024 * 1024  # per part of a server's log
LOG_KEEP = 3  # rotated parts kept beside the current one
_LOG_LINES_IN_ERRORS = 15


class LocalProvider(ProviderBase):
    """Runs bundles as local servers. ``transport`` (httpx) and ``cache_dir`` are
    injectable; ``stop_grace`` is how long an old server gets to finish requests;
    each server's log rotates at ``log_max_bytes``, ``log_keep`` old parts kept."""

    name: ClassVar[str] = PROVIDER
    config_model: ClassVar[type[LocalConfig]] = LocalConfig

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        cache_dir: Path | None = None,
        stop_grace: float = 10.0,
        log_max_bytes: int = LOG_MAX_BYTES,
        log_keep: int = LOG_KEEP,
    ) -> None:
        self._transport = transport
        self._cache_dir = cache_dir
        self._grace = stop_grace
        self._rotate = (log_max_bytes, log_keep)

    def check_rollout(self, ctx: ProviderContext) -> None:
        """Every mode is served here: a canary or shadow runs beside the primary behind
        the stage's router (providers/local_router.py)."""

    @property
    def cache_dir(self) -> Path:
        return self._cache_dir if self._cache_dir is not None else default_cache_dir()

    # -- build and plan --------------------------------------------------------------
    def build(self, *, ctx: ProviderContext) -> Bundle:
        """Build the bundle into ``.slml/builds/local`` with its cached environment."""
        return build_local_bundle(
            artifact_dir=ctx.config.model,
            out_dir=ctx.state.build_dir(PROVIDER),
            target=Target.here(PROVIDER),
            reporter=ctx.reporter,
            cache_dir=self.cache_dir,
            requirements_changes=requirements_with_sink(ctx.config),
        )

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        """What ``deploy`` would do, in words. Reads state; changes nothing."""
        cfg: LocalConfig = ctx.config.local
        old = stage_state.read_record(ctx)
        version = self._next_version(ctx)
        port = cfg.port or (old.port if old else None)
        where = f"{cfg.host}:{port}" if port else f"{cfg.host} on a free port"
        env = bundle.files.get("env")
        steps = [
            f"copy the bundle to {self._version_dir(ctx, version)}",
            f"start a new server for version {version} on {where} using env {env}",
            f"health-check it (GET /healthz, up to {cfg.health_timeout:g} s)",
        ]
        if ctx.rollout is not None and ctx.rollout.mode != "replace":
            steps += routing.plan_steps(old, version, ctx.rollout)
        elif old and proc.is_our_server(old.pid):
            steps.append(f"switch the record, stop version {old.version} (pid {old.pid})")
        else:
            steps.append(
                "write the deployment record" + (" (the old server is down)" if old else "")
            )
        warnings = tuple(stage_state.host_warnings(cfg.host))
        return Plan(provider=PROVIDER, stage=ctx.stage, kind="local", steps=tuple(steps),
                    warnings=warnings)  # fmt: skip

    def _next_version(self, ctx: ProviderContext) -> int:
        seen = [*self.versions(ctx=ctx), *stage_state.pending_version(ctx)]
        return ctx.state.next_version(ctx.stage, PROVIDER, seen=seen)

    # -- deploy ----------------------------------------------------------------------
    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        """Blue/green deploy under the project lock (a concurrent deploy waits). With
        ``ctx.rollout`` in canary or shadow mode, the new version starts beside the
        primary and the stage's router (``local_router``) splits or mirrors traffic.

        Raises DeployError quoting the server's log when the new version fails to start
        or become healthy; the previous version keeps serving. KeyboardInterrupt stops
        the new server, leaves the previous one and is re-raised. Raises RecordUnreadable
        when the stage's record is (``slml destroy --force`` first)."""
        for warning in stage_state.host_warnings(ctx.config.local.host):
            ctx.reporter.warn(warning)
        rollout = ctx.rollout or RolloutRequest()
        with ctx.state.lock(on_wait=ctx.reporter.step):
            old = stage_state.read_record(ctx)
            if rollout.mode != "replace" and (old is None or not proc.is_our_server(old.pid)):
                raise DeployError(
                    f"--{rollout.mode} needs a version serving stage {ctx.stage}, and none is",
                    hint="deploy it first with `slml deploy`, then the candidate with "
                    f"`slml deploy --{rollout.mode}`",
                )
            notes = stage_state.sweep(ctx, old, grace=self._grace)
            version = self._next_version(ctx)
            stage_state.write_pending(ctx, version)
            started: list[int] = []
            try:
                ctx.reporter.step(f"starting version {version}")
                vdir = self._copy_bundle(ctx, bundle, version)
                try:
                    record = self._place(ctx, vdir, version, old, rollout, started)
                    self._commit(ctx, record, started, rollout.mode)
                except BaseException:
                    shutil.rmtree(vdir, ignore_errors=True)
                    raise
                notes += self._retire(ctx, old, record)
                self._prune(ctx, keep={t.version for t in record.traffic})
            finally:
                stage_state.clear_pending(ctx)
        return _result(record, version, notes)

    def _place(
        self, ctx: ProviderContext, vdir: Path, version: int, old: DeploymentRecord | None,
        rollout: RolloutRequest, started: list[int],
    ) -> DeploymentRecord:  # fmt: skip
        """Start the new version where it belongs; the record that would serve it."""
        routed = rollout.mode != "replace" or routing.has_router(old)
        info, shared = self._start(ctx, vdir, version, old, promote=not routed,
                                   started=started)  # fmt: skip
        if not routed:
            return routing.single_record(ctx, info, shared)
        assert old is not None or rollout.mode == "replace"
        return routing.routed_record(ctx, old, info, rollout, start=self._start_kept,
                                     started=started)  # fmt: skip

    def _start_kept(self, ctx: ProviderContext, old: DeploymentRecord, started: list[int]
                    ) -> VersionInfo:  # fmt: skip
        """Start the live primary's kept bundle again, off the shared port (standby), so
        the router can reach it while the original server leaves the shared port."""
        vdir = self._version_dir(ctx, old.version)
        info, _ = self._start(ctx, vdir, old.version, old, promote=False, started=started)
        return info

    def _commit(self, ctx: ProviderContext, record: DeploymentRecord, started: list[int],
                mode: str) -> None:  # fmt: skip
        """Switch the record to the new servers, then let them run on their own."""
        ledger = Ledger(ctx.state)
        ledger.write(record)
        for pid in started:
            proc.release(pid)
        kind = {"replace": "deploy", "canary": "canary", "shadow": "shadow"}[mode]
        new = max(t.version for t in record.traffic)
        info = record.info(new)
        ledger.append(HistoryEvent(
            event="deploy" if kind == "deploy" else kind, provider=PROVIDER, stage=ctx.stage,
            version=new, url=record.url, pid=info.pid if info else None,
            model_sha256=info.model_sha256 if info else None,
            lock_hash=info.lock_hash if info else None, traffic=record.traffic,
        ))  # fmt: skip

    def _copy_bundle(self, ctx: ProviderContext, bundle: Bundle, version: int) -> Path:
        vdir = self._version_dir(ctx, version)
        tmp = vdir.with_name(f".{vdir.name}.copy")
        for leftover in (vdir, tmp):  # from a deploy killed mid-way
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            with bundle_lock(bundle.path):
                shutil.copytree(bundle.path, tmp, symlinks=True)
            tmp.rename(vdir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return vdir

    def _start(
        self, ctx: ProviderContext, vdir: Path, version: int, old: DeploymentRecord | None,
        *, promote: bool, started: list[int],
    ) -> tuple[VersionInfo, int | None]:  # fmt: skip
        """Start ``vdir``'s server in standby, health-check it, and with ``promote`` put it
        on the shared port. Returns the version's info and the shared port (promoted).
        On failure every process in ``started`` is stopped."""
        cfg: LocalConfig = ctx.config.local
        info = read_bundle_info(vdir)
        env = ensure_env(read_lock(vdir / LOCK_FILE), cache_dir=self.cache_dir)
        port = cfg.port or (old.port if old else None) or proc.free_port(cfg.host)
        log = self._stage_dir(ctx) / f"server-v{version}.log"
        model_env = served_env(ctx.config, PROVIDER, read_manifest(vdir / "model"))
        extra = {**model_env, "SLML_MAX_BODY_BYTES": str(int(cfg.max_body_mb * 1024 * 1024)),
                 "SLML_VERSION": str(version),  # /metrics and captured records say it
                 **capture_env(ctx.config, default=self._stage_dir(ctx) / "capture")}
        if ctx.config.batching is not None:  # the user's local.env still wins
            extra = {**ctx.config.batching.env(), **extra}
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"--- slml: starting version {version} at {now_iso()} ---\n")
        offset = log.stat().st_size
        # a bundle built by an older slml has no standby or log rotation: start it as before
        standby = proc.bundle_supports(vdir, "control")
        record_path = ctx.state.record_path(ctx.stage, PROVIDER) if standby else None
        rotate = self._rotate if proc.bundle_supports(vdir, "logfile") else None
        try:
            command = proc.server_command(env, vdir, host=cfg.host, port=port, record=record_path)
            pid = proc.spawn(command, cwd=vdir, env=proc.server_env(vdir, extra), log_path=log,
                             marker=stage_state.marker(ctx), control=standby,
                             rotate=rotate)  # fmt: skip
            started.append(pid)
            stage_state.write_pending(ctx, version, pid=pid)
            ctx.reporter.detail(f"pid {pid}, log {log}")
            up = proc.wait_healthy(
                pid, log_path=log, offset=offset, host=cfg.host, timeout=cfg.health_timeout
            )
            shared = None
            if promote:
                shared = proc.promote(pid, log_path=log, offset=offset) if standby else up.port
        except proc.ServerFailed as exc:
            self._abandon(started)
            raise self._failed(ctx, version, str(exc), log, port) from None
        except BaseException:
            self._abandon(started)
            Ledger(ctx.state).append(_failure("deploy-interrupted", ctx, version, "interrupted"))
            raise
        where = f"serves port {shared}" if shared else f"answers on port {up.admin_port}"
        ctx.reporter.detail(f"version {version} is healthy and {where}")
        return VersionInfo(
            version=version, model_sha256=info["model"]["sha256"], lock_hash=info["lock_hash"],
            bundle=str(vdir), env=str(env), pid=up.pid, pgid=up.pgid, admin_port=up.admin_port,
            log=str(log), deployed_at=now_iso(), model=info["model"], port=port,
        ), shared  # fmt: skip

    def _abandon(self, pids: list[int]) -> None:
        for pid in pids:
            proc.stop_server(pid, pid, grace=2.0)

    def _failed(
        self, ctx: ProviderContext, version: int, reason: str, log: Path, port: int
    ) -> DeployError:
        Ledger(ctx.state).append(_failure("deploy-failed", ctx, version, reason))
        last = "\n".join("    " + line for line in proc.tail(log, _LOG_LINES_IN_ERRORS))
        old = stage_state.read_record(ctx)
        kept = f"version {old.version} is still serving" if old else "nothing was deployed"
        return DeployError(
            f"version {version} did not start on port {port}: {reason}; {kept}.\n"
            f"  last lines of {log}:\n{last}",
            hint="fix the model or its requirements and deploy again; `slml logs` shows more",
        )

    def _retire(
        self, ctx: ProviderContext, old: DeploymentRecord | None, new: DeploymentRecord
    ) -> list[str]:
        """Stop what ``old`` kept running and ``new`` does not."""
        notes = []
        gone = stage_state.kept_pids(old) - stage_state.kept_pids(new)
        names = {i.pid: f"version {v}" for v, i in (old.versions.items() if old else ())}
        if old and old.pid:
            names[old.pid] = f"version {old.version}"
        if old and old.router_pid:
            names[old.router_pid] = "the router"
        for pid in sorted(gone):
            what = names.get(pid, "server")
            if proc.stop_server(pid, pid, grace=self._grace):
                ctx.reporter.detail(f"stopped {what} (pid {pid})")
                notes.append(f"stopped {what} (pid {pid})")
            else:
                notes.append(f"{what} was not running")
        return notes

    # -- traffic among live versions -------------------------------------------------
    def shift(self, *, ctx: ProviderContext, traffic: tuple[LiveVersion, ...]) -> DeployResult:
        """Set the traffic among versions already live in the stage (promote, rollback of
        a canary, the guard); stops the servers of versions it leaves out. Raises
        NotDeployed, or DeployError naming a version that is not live."""
        with ctx.state.lock(on_wait=ctx.reporter.step):
            old = self._record(ctx)
            record = routing.shifted(ctx, old, traffic)
            Ledger(ctx.state).write(record)
            notes = self._retire(ctx, old, record)
        return _result(record, record.version, notes)

    def version_metrics(self, *, ctx: ProviderContext, version: int,
                        window: float = 60.0) -> VersionMetrics:  # fmt: skip
        """The router's counters for ``version`` over the last ``window`` seconds.
        Raises ProviderUnavailable when the stage has no router (one version, no split)."""
        return routing.metrics(self._record(ctx), version, window, client=self._client(5.0))

    # -- versions on disk ------------------------------------------------------------
    def _stage_dir(self, ctx: ProviderContext) -> Path:
        return ctx.state.stage_dir(PROVIDER, ctx.stage)

    def _version_dir(self, ctx: ProviderContext, version: int) -> Path:
        return stage_state.version_dir(ctx, version)

    def versions(self, *, ctx: ProviderContext) -> list[int]:
        """Versions whose bundle copy is still on disk (rollback candidates), ascending."""
        return stage_state.versions(ctx)

    def _prune(self, ctx: ProviderContext, *, keep: set[int]) -> None:
        for version in self.versions(ctx=ctx)[:-KEEP_VERSIONS]:
            if version not in keep:
                shutil.rmtree(self._version_dir(ctx, version), ignore_errors=True)

    def rollback(self, *, ctx: ProviderContext, version: int | None = None) -> DeployResult:
        """Redeploy a kept version's bundle (default: the newest before the current one)
        as a new version. Raises DeployError when that version is not kept."""
        version = Ledger(ctx.state).rollback_target(
            ctx.stage, PROVIDER, version=version, candidates=self.versions(ctx=ctx))
        ctx.reporter.step(f"rolling back to the bundle of version {version}")
        return self.deploy(ctx=replace(ctx, rollout=None),
                           bundle=self.kept_bundle(ctx=ctx, version=version))

    def kept_bundle(self, *, ctx: ProviderContext, version: int) -> Bundle:
        """The bundle copy version ``version`` of this stage runs (or ran), byte for byte:
        what ``slml promote --from`` deploys to another stage. Raises DeployError when
        it is no longer kept."""
        vdir = self._version_dir(ctx, version)
        if not vdir.is_dir():
            raise DeployError(
                f"the bundle of version {version} of stage {ctx.stage} is no longer kept",
                hint=f"the last {KEEP_VERSIONS} versions are kept; deploy the model again",
            )
        return load_bundle(vdir, cache_dir=self.cache_dir)

    # -- operations ------------------------------------------------------------------
    def status(self, *, ctx: ProviderContext) -> Status:
        """running, down (recorded but dead or unhealthy), not-deployed, or unknown (the
        record is unreadable; ``details["servers"]`` lists the stage's live servers).
        ``details["unrecorded_servers"]`` lists live servers the record does not name.
        Read-only."""
        try:
            record = stage_state.read_record(ctx)
        except RecordUnreadable as exc:
            found = {"reason": exc.message, "hint": exc.hint,
                     "servers": stage_state.servers(ctx)}  # fmt: skip
            return Status(provider=PROVIDER, stage=ctx.stage, state="unknown", details=found)
        if record is None:
            return Status(provider=PROVIDER, stage=ctx.stage, state="not-deployed")
        details: dict[str, Any] = {k: getattr(record, k) for k in
                                   ("pid", "port", "log", "model", "deployed_at")}  # fmt: skip
        if strays := stage_state.strays(ctx, record):
            details["unrecorded_servers"] = strays
        if record.router_pid:
            details["router_pid"] = record.router_pid
            with contextlib.suppress(ProviderUnavailable, httpx.HTTPError, ValueError):
                details["metrics"] = routing.router_metrics(record, 60.0,
                                                            client=self._client(2.0))
        state: DeploymentState
        if not proc.is_our_server(record.pid):
            state, details["reason"] = "down", f"process {record.pid} is not running"
        elif not self._healthy(record.url):
            state, details["reason"] = "down", "the server does not answer GET /healthz"
        else:
            state = "running"
        return Status(
            provider=PROVIDER, stage=ctx.stage, state=state, url=record.url,
            version=record.version, details=details, traffic=record.live(),
        )  # fmt: skip

    def _client(self, timeout: float) -> httpx.Client:
        return httpx.Client(transport=self._transport, timeout=timeout)

    def _healthy(self, url: str) -> bool:
        try:
            with self._client(2.0) as client:
                return client.get(f"{url}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to /predict and return the JSON answer. Raises NotDeployed,
        or InvokeError carrying the server's own error message."""
        record = self._record(ctx)
        with self._client(60.0) as client:
            response = http_answer.post(
                client, f"{record.url}/predict", json=payload,
                what=f"version {record.version} at {record.url}",
                unreachable_hint="`slml status` tells whether it is down; `slml deploy` "
                "restarts it",
            )  # fmt: skip
        return http_answer.answer_json(response, what="the model server")

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """The current version's server log (else the newest one, e.g. of a failed
        deploy). With ``follow``, keeps yielding new lines until the caller stops."""
        try:
            record = stage_state.read_record(ctx)
        except RecordUnreadable:  # the newest log still helps to find out what happened
            record = None
        logs = sorted(self._stage_dir(ctx).glob("server-v*.log"), key=lambda p: p.stat().st_mtime)
        log = Path(record.log) if record and record.log else (logs[-1] if logs else None)
        if log is None:
            raise NotDeployed(_not_deployed(ctx), hint="deploy first: `slml deploy`")
        return proc.follow(log, lines) if follow else iter(proc.tail(log, lines))

    def destroy(self, *, ctx: ProviderContext, force: bool = False) -> None:
        """Stop every server of the stage (the recorded one and any other carrying the
        stage's marker), and only once they are all stopped delete the record and the
        kept bundles; keeps the logs. Idempotent: with nothing deployed it only reports
        so. An unreadable record raises RecordUnreadable unless ``force``, which sets it
        aside instead. Raises DeployError, deleting nothing, when a server won't stop."""
        with ctx.state.lock(on_wait=ctx.reporter.step):
            try:
                record, unreadable = stage_state.read_record(ctx), False
            except RecordUnreadable:
                if not force:
                    raise
                record, unreadable = None, True
            servers = set(stage_state.servers(ctx))
            recorded = record.pid if record and proc.is_our_server(record.pid) else None
            if record is None and not unreadable and not servers:
                stage_state.clear_pending(ctx)
                ctx.reporter.step(_not_deployed(ctx) + "; nothing to destroy")
                return
            stage_state.stop_for_destroy(ctx, record, sorted(servers - {recorded}),
                                         grace=self._grace)  # fmt: skip
            stage_state.forget(ctx, record, unreadable=unreadable, was_running=bool(recorded),
                               bundles=[self._version_dir(ctx, v) for v in self.versions(ctx=ctx)])
            ctx.reporter.step(_destroyed(record))

    def _record(self, ctx: ProviderContext) -> DeploymentRecord:
        record = stage_state.read_record(ctx)
        if record is None:
            raise NotDeployed(_not_deployed(ctx), hint="deploy first: `slml deploy`")
        return record


def _destroyed(record: DeploymentRecord | None) -> str:
    return f"destroyed version {record.version} ({record.url})" if record else (
        "destroyed every server of the stage")  # fmt: skip


def _not_deployed(ctx: ProviderContext) -> str:
    return f"{ctx.name} is not deployed locally (stage {ctx.stage})"


def _result(record: DeploymentRecord, version: int, notes: list[str]) -> DeployResult:
    outputs = {"pid": record.pid, "port": record.port, "admin_port": record.admin_port,
               "log": record.log, "model_sha256": record.model_sha256}  # fmt: skip
    if record.router_pid:
        outputs.update(router_pid=record.router_pid, router_admin_port=record.router_admin_port)
    return DeployResult(provider=PROVIDER, stage=record.stage, url=record.url, version=version,
                        outputs=outputs, notes=tuple(notes), traffic=record.live())  # fmt: skip


def _failure(kind: str, ctx: ProviderContext, version: int, reason: str) -> HistoryEvent:
    """A failed deploy, its cause under ``error`` as the Pulumi providers write it."""
    return HistoryEvent(event=kind, provider=PROVIDER, stage=ctx.stage, version=version,
                        error=reason)  # fmt: skip


