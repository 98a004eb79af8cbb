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
from slml.config import LocalConfig
from slml.errors import DeployError, InvokeError, NotDeployed
from slml.providers import local_process as proc
from slml.providers import local_stage as stage_state
from slml.providers.base import Bundle, DeployResult, Plan, ProviderContext, Status
from slml.runtime.manifest import read_manifest
from slml.state import RecordUnreadable, now_iso, who

PROVIDER = "local"
KEEP_VERSIONS = 3
LOG_MAX_BYTES = 10 * 1024 * 1024  # per part of a server's log
LOG_KEEP = 3  # rotated parts kept beside the current one
_LOG_LINES_IN_ERRORS = 15


class LocalProvider:
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
            requirements_changes=ctx.config.requirements,
        )

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        """What ``deploy`` would do, in words. Reads state; changes nothing."""
        cfg: LocalConfig = ctx.config.local
        old = stage_state.read_record(ctx)
        version = self._next_version(ctx)
        port = cfg.port or (old or {}).get("port")
        where = f"{cfg.host}:{port}" if port else f"{cfg.host} on a free port"
        env = bundle.files.get("env")
        steps = [
            f"copy the bundle to {self._version_dir(ctx, version)}",
            f"start a new server for version {version} on {where} using env {env}",
            f"health-check it (GET /healthz, up to {cfg.health_timeout:g} s)",
        ]
        if old and proc.is_our_server(old.get("pid")):
            steps.append(f"switch the record, stop version {old['version']} (pid {old['pid']})")
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
        """Blue/green deploy under the project lock (a concurrent deploy waits).

        Raises DeployError quoting the server's log when the new version fails to start
        or become healthy; the previous version keeps serving. KeyboardInterrupt stops
        the new server, leaves the previous one and is re-raised. Raises RecordUnreadable
        when the stage's record is (``slml destroy --force`` first)."""
        for warning in stage_state.host_warnings(ctx.config.local.host):
            ctx.reporter.warn(warning)
        with ctx.state.lock(on_wait=ctx.reporter.step):
            old = stage_state.read_record(ctx)
            notes = stage_state.sweep(ctx, old, grace=self._grace)
            version = self._next_version(ctx)
            stage_state.write_pending(ctx, version)
            try:
                ctx.reporter.step(f"starting version {version}")
                vdir = self._copy_bundle(ctx, bundle, version)
                record = self._start(ctx, vdir, version, old)
                self._commit(ctx, record, vdir)
                notes += self._retire(ctx, old, record)
                self._prune(ctx, keep=record["version"])
            finally:
                stage_state.clear_pending(ctx)
        return DeployResult(
            provider=PROVIDER,
            stage=ctx.stage,
            url=record["url"],
            version=version,
            outputs={k: record[k] for k in ("pid", "port", "admin_port", "log", "model_sha256")},
            notes=tuple(notes),
        )

    def _commit(self, ctx: ProviderContext, record: dict[str, Any], vdir: Path) -> None:
        """Switch the record to the new server, then let it run on its own."""
        try:
            ctx.state.write_record(ctx.stage, PROVIDER, record)
        except BaseException:
            self._abandon(record["pid"], vdir)
            raise
        proc.release(record["pid"])
        ctx.state.append_history(_event("deploy", record))

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
        self, ctx: ProviderContext, vdir: Path, version: int, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        cfg: LocalConfig = ctx.config.local
        info = read_bundle_info(vdir)
        env = ensure_env(read_lock(vdir / LOCK_FILE), cache_dir=self.cache_dir)
        port = cfg.port or (old or {}).get("port") or proc.free_port(cfg.host)
        log = self._stage_dir(ctx) / f"server-v{version}.log"
        model_env = served_env(ctx.config, PROVIDER, read_manifest(vdir / "model"))
        extra = {**model_env, "SLML_MAX_BODY_BYTES": str(int(cfg.max_body_mb * 1024 * 1024))}
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"--- slml: starting version {version} at {now_iso()} ---\n")
        offset = log.stat().st_size
        pid = None
        # a bundle built by an older slml has no standby or log rotation: start it as before
        standby = proc.bundle_supports(vdir, "control")
        record_path = ctx.state.record_path(ctx.stage, PROVIDER) if standby else None
        rotate = self._rotate if proc.bundle_supports(vdir, "logfile") else None
        try:
            command = proc.server_command(env, vdir, host=cfg.host, port=port, record=record_path)
            pid = proc.spawn(command, cwd=vdir, env=proc.server_env(vdir, extra), log_path=log,
                             marker=stage_state.marker(ctx), control=standby,
                             rotate=rotate)  # fmt: skip
            stage_state.write_pending(ctx, version, pid=pid)
            ctx.reporter.detail(f"pid {pid}, log {log}")
            started = proc.wait_healthy(
                pid, log_path=log, offset=offset, host=cfg.host, timeout=cfg.health_timeout
            )
            shared = proc.promote(pid, log_path=log, offset=offset) if standby else started.port
        except proc.ServerFailed as exc:
            self._abandon(pid, vdir)
            raise self._failed(ctx, version, str(exc), log, port) from None
        except BaseException:
            self._abandon(pid, vdir)
            ctx.state.append_history(_failure("deploy-interrupted", ctx, version, "interrupted"))
            raise
        ctx.reporter.detail(f"version {version} is healthy and serves port {shared}")
        host = proc.connect_host(cfg.host)
        return {
            "name": ctx.name, "stage": ctx.stage, "provider": PROVIDER, "version": version,
            "url": f"http://{host}:{shared}", "host": cfg.host, "port": shared,
            "admin_port": started.admin_port, "pid": started.pid, "pgid": started.pgid,
            "model": info["model"], "model_sha256": info["model"]["sha256"],
            "lock_hash": info["lock_hash"], "bundle": str(vdir), "env": str(env),
            "log": str(log), "deployed_at": now_iso(), "deployed_by": who(),
        }  # fmt: skip

    def _abandon(self, pid: int | None, vdir: Path) -> None:
        if pid is not None:
            proc.stop_server(pid, pid, grace=2.0)
        shutil.rmtree(vdir, ignore_errors=True)

    def _failed(
        self, ctx: ProviderContext, version: int, reason: str, log: Path, port: int
    ) -> DeployError:
        ctx.state.append_history(_failure("deploy-failed", ctx, version, reason))
        last = "\n".join("    " + line for line in proc.tail(log, _LOG_LINES_IN_ERRORS))
        old = stage_state.read_record(ctx)
        kept = f"version {old['version']} is still serving" if old else "nothing was deployed"
        return DeployError(
            f"version {version} did not start on port {port}: {reason}; {kept}.\n"
            f"  last lines of {log}:\n{last}",
            hint="fix the model or its requirements and deploy again; `slml logs` shows more",
        )

    def _retire(
        self, ctx: ProviderContext, old: dict[str, Any] | None, new: dict[str, Any]
    ) -> list[str]:
        if not old or old.get("pid") == new["pid"]:
            return []
        if proc.stop_server(old["pid"], old.get("pgid"), grace=self._grace):
            ctx.reporter.detail(f"stopped version {old['version']} (pid {old['pid']})")
            return [f"stopped version {old['version']} (pid {old['pid']})"]
        return [f"version {old['version']} was not running"]

    # -- versions on disk ------------------------------------------------------------
    def _stage_dir(self, ctx: ProviderContext) -> Path:
        return ctx.state.stage_dir(PROVIDER, ctx.stage)

    def _version_dir(self, ctx: ProviderContext, version: int) -> Path:
        return stage_state.version_dir(ctx, version)

    def versions(self, *, ctx: ProviderContext) -> list[int]:
        """Versions whose bundle copy is still on disk (rollback candidates), ascending."""
        return stage_state.versions(ctx)

    def _prune(self, ctx: ProviderContext, *, keep: int) -> None:
        for version in self.versions(ctx=ctx)[:-KEEP_VERSIONS]:
            if version != keep:
                shutil.rmtree(self._version_dir(ctx, version), ignore_errors=True)

    def rollback(self, *, ctx: ProviderContext, version: int | None = None) -> DeployResult:
        """Redeploy a kept version's bundle (default: the newest before the current one)
        as a new version. Raises DeployError when that version is not kept."""
        record = stage_state.read_record(ctx)
        current = record["version"] if record else None
        kept = [v for v in self.versions(ctx=ctx) if v != current]
        if version is None:
            older = [v for v in kept if current is None or v < current]
            version = older[-1] if older else None
        if version is None or version not in kept:
            listed = ", ".join(map(str, kept)) or "none"
            wanted = f"version {version}" if version is not None else "an earlier version"
            raise DeployError(
                f"no kept bundle for {wanted} of stage {ctx.stage} (kept: {listed})",
                hint=f"the last {KEEP_VERSIONS} versions are kept; deploy the model again",
            )
        ctx.reporter.step(f"rolling back to the bundle of version {version}")
        bundle = load_bundle(self._version_dir(ctx, version), cache_dir=self.cache_dir)
        return self.deploy(ctx=ctx, bundle=bundle)

    # -- operations ------------------------------------------------------------------
    def status(self, *, ctx: ProviderContext) -> Status:
        """running, down (recorded but dead or unhealthy), not-deployed, or unknown (the
        record is unreadable; ``details["servers"]`` lists the stage's live servers).
        ``details["unrecorded_servers"]`` lists live servers the record does not name.
        Read-only."""
        try:
            record = stage_state.read_record(ctx)
        except RecordUnreadable as exc:
            details = {"reason": exc.message, "hint": exc.hint,
                       "servers": stage_state.servers(ctx)}  # fmt: skip
            return Status(provider=PROVIDER, stage=ctx.stage, state="unknown", details=details)
        if record is None:
            return Status(provider=PROVIDER, stage=ctx.stage, state="not-deployed")
        details = {k: record.get(k) for k in ("pid", "port", "log", "model", "deployed_at")}
        if strays := stage_state.strays(ctx, record):
            details["unrecorded_servers"] = strays
        if not proc.is_our_server(record.get("pid")):
            state, details["reason"] = "down", f"process {record.get('pid')} is not running"
        elif not self._healthy(record["url"]):
            state, details["reason"] = "down", "the server does not answer GET /healthz"
        else:
            state = "running"
        return Status(
            provider=PROVIDER, stage=ctx.stage, state=state, url=record["url"],
            version=record["version"], details=details,
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
        try:
            with self._client(60.0) as client:
                response = client.post(f"{record['url']}/predict", json=payload)
        except httpx.HTTPError as exc:
            raise InvokeError(
                f"cannot reach version {record['version']} at {record['url']}: {exc}",
                hint="`slml status` tells whether it is down; `slml deploy` restarts it",
            ) from None
        if response.status_code >= 400:
            raise InvokeError(f"the model server answered {_error_text(response)}")
        return response.json()

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
        log = Path(record["log"]) if record else (logs[-1] if logs else None)
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
            recorded = record["pid"] if record and proc.is_our_server(record["pid"]) else None
            if record is None and not unreadable and not servers:
                stage_state.clear_pending(ctx)
                ctx.reporter.step(_not_deployed(ctx) + "; nothing to destroy")
                return
            stage_state.stop_for_destroy(ctx, record, sorted(servers - {recorded}),
                                         grace=self._grace)  # fmt: skip
            stage_state.forget(ctx, record, unreadable=unreadable, was_running=bool(recorded),
                               bundles=[self._version_dir(ctx, v) for v in self.versions(ctx=ctx)])
            ctx.reporter.step(_destroyed(record))

    def _record(self, ctx: ProviderContext) -> dict[str, Any]:
        record = stage_state.read_record(ctx)
        if record is None:
            raise NotDeployed(_not_deployed(ctx), hint="deploy first: `slml deploy`")
        return record


def _destroyed(record: dict[str, Any] | None) -> str:
    return f"destroyed version {record['version']} ({record['url']})" if record else (
        "destroyed every server of the stage")  # fmt: skip


def _not_deployed(ctx: ProviderContext) -> str:
    return f"{ctx.name} is not deployed locally (stage {ctx.stage})"


def _event(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    keys = ("provider", "stage", "version", "url", "pid", "model_sha256", "lock_hash")
    return {"event": kind, **{k: record.get(k) for k in keys}}


def _failure(kind: str, ctx: ProviderContext, version: int, reason: str) -> dict[str, Any]:
    return {"event": kind, "provider": PROVIDER, "stage": ctx.stage, "version": version,
            "reason": reason}  # fmt: skip


def _error_text(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    return f"{response.status_code}: {response.text[:300]}"
