"""The base of every Pulumi-backed provider (aws, sagemaker, gcp, azure).

A subclass sets ``name``, ``config_model`` and ``plugins`` and implements:

- ``build(*, ctx) -> Bundle``                  local, no cloud calls
- ``program(*, ctx, bundle) -> () -> None``    creates its ComponentResource and
                                               ``pulumi.export``s ``url`` and the rest
- ``endpoint(outputs) -> str``                 the URL from the stack outputs
- optionally ``warnings(ctx) -> list[str]``    plain-words cautions (a public endpoint)

The base gives ``plan`` (a real ``pulumi preview`` when the CLI is installed and works,
else an offline plan under Pulumi's mocks, labelled as such), ``deploy`` (records the
deployment in ``.slml/`` with a version number), ``destroy``, and ``status``/``invoke``/
``logs`` that raise ``ProviderUnavailable`` until a subclass overrides them.

Stack name: ``<config.name>-<stage>``; Pulumi project name: ``config.name``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from slml import engine as engine_mod
from slml.engine import PluginSpec, Program, PulumiEngine
from slml.errors import DeployError, NotDeployed, ProviderUnavailable
from slml.ledger import (
    DeploymentRecord,
    HistoryEvent,
    Ledger,
    Live,
    StackOutputs,
    VersionInfo,
)
from slml.providers import pulumi_cli
from slml.providers.base import (
    Bundle,
    DeployResult,
    Plan,
    ProviderBase,
    ProviderContext,
)
from slml.rollout import LiveVersion
from slml.state import RecordUnreadable, secret_warnings

OFFLINE_NOTE = (
    "offline plan: the program ran under Pulumi's mocks on this machine; it is not "
    "compared with live state, so every resource shows as a create and values marked "
    "'(known after deploy)' are computed by the cloud"
)

EngineFactory = Callable[..., PulumiEngine]


def plugin(name: str, package: str) -> PluginSpec:
    """The provider plugin matching an installed Pulumi SDK package (``pulumi_aws``)."""
    try:
        return PluginSpec(name, "v" + version(package))
    except PackageNotFoundError:
        raise ProviderUnavailable(
            f"the Python package {package} is not installed",
            hint="pip install 'slml[aws]' (or [gcp], [azure]) for this provider",
        ) from None


def archive_artifact(ctx: ProviderContext, sha256: str) -> Path:
    """Keep a copy of the deployed model artifact under ``.slml/artifacts/<sha256>`` so
    a later rollback can deploy it again, whatever happened to the model path since.
    Keyed by the artifact digest (manifest included: two versions that share a model
    file but not a manifest are two archives; records written before it keep their
    ``artifact`` path and roll back as they are). Content-addressed: the same artifact
    is stored once. Atomic (copy, then rename); a symlink is copied as a link, never
    followed (a rollback's build then refuses it)."""
    dest = ctx.state.path("artifacts", sha256)
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{sha256}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ctx.config.model, tmp, symlinks=True)
    tmp.rename(dest)
    return dest


class PulumiProvider(ProviderBase):
    """Base class; see the module docstring for what subclasses provide."""

    name: ClassVar[str] = "pulumi"
    config_model: ClassVar[type[BaseModel]]
    plugin_packages: ClassVar[tuple[tuple[str, str], ...]] = ()  # (plugin, python package)

    def __init__(
        self,
        *,
        engine_factory: EngineFactory = PulumiEngine,
        cli_available: Callable[[], bool] = engine_mod.pulumi_cli_available,
    ) -> None:
        self._engine_factory = engine_factory
        self._cli_available = cli_available

    # -- what subclasses implement -------------------------------------------------------
    def build(self, *, ctx: ProviderContext) -> Bundle:
        raise NotImplementedError

    def program(self, *, ctx: ProviderContext, bundle: Bundle) -> Program:
        raise NotImplementedError

    def endpoint(self, outputs: dict[str, Any]) -> str:
        return str(outputs.get("url", ""))

    def warnings(self, ctx: ProviderContext) -> list[str]:
        return []

    def _all_warnings(self, ctx: ProviderContext) -> list[str]:
        """The subclass's warnings, plus secret files others may read."""
        pulumi_dir = ctx.state.path("pulumi")
        files = [*ctx.state.secret_files(), engine_mod.passphrase_file(pulumi_dir)]
        unique = sorted({f for f in files if f is not None})
        return [*self.warnings(ctx), *secret_warnings(unique)]

    def deploy_program(self, *, ctx: ProviderContext, bundle: Bundle) -> Program:
        """The program ``deploy`` runs; ``program`` by default. Override to create
        what only a real deploy may (e.g. a generated secret)."""
        return self.program(ctx=ctx, bundle=bundle)

    def stack_config(self, ctx: ProviderContext) -> dict[str, str]:
        """Pulumi stack config to set before each run (e.g. ``aws:region``)."""
        return {}

    # -- naming --------------------------------------------------------------------------
    def stack_name(self, ctx: ProviderContext) -> str:
        return f"{ctx.config.name}-{ctx.stage}"

    def project_name(self, ctx: ProviderContext) -> str:
        return ctx.config.name

    def section(self, ctx: ProviderContext) -> Any:
        return ctx.config.section(self.name)

    # -- the engine ----------------------------------------------------------------------
    def engine(self, ctx: ProviderContext) -> PulumiEngine:
        """The Automation API engine for this project and stage. Raises
        ProviderUnavailable (with install instructions) when the CLI is missing."""
        if not self._cli_available() and not pulumi_cli.ensure_cli(ctx.reporter):
            raise ProviderUnavailable(
                f"deploying with --provider {self.name} needs the Pulumi CLI, which is "
                "not installed here",
                hint=pulumi_cli.HINT,
            )
        return self._engine_factory(
            self.project_name(ctx),
            self.stack_name(ctx),
            work_dir=ctx.project_dir,
            backend_url=ctx.config.backend,
            plugins=tuple(plugin(n, p) for n, p in self.plugin_packages),
            config=self.stack_config(ctx),
            debug=ctx.debug,
        )

    def preflight(self, *, ctx: ProviderContext) -> None:
        """Fail before any build when deploy cannot succeed here (no Pulumi CLI)."""
        self.engine(ctx)

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        """A real preview when the Pulumi CLI works here, else the offline plan."""
        warnings = tuple(self._all_warnings(ctx))
        program = self.program(ctx=ctx, bundle=bundle)
        fallback = "the Pulumi CLI is not installed"
        if self._cli_available():
            try:
                plan = self.engine(ctx).preview(program, provider=self.name, stage=ctx.stage)
                return Plan(**{**plan.__dict__, "warnings": warnings, "notes": bundle.notes})
            except (DeployError, ProviderUnavailable) as exc:
                fallback = f"pulumi preview failed ({exc.message.splitlines()[0]})"
        ctx.reporter.step(f"planning offline: {fallback}, running the program under mocks")
        resources = engine_mod.offline_plan(
            program, project=self.project_name(ctx), stack=self.stack_name(ctx)
        )
        notes = (f"{OFFLINE_NOTE} ({fallback})", *bundle.notes)
        return Plan(
            provider=self.name,
            stage=ctx.stage,
            kind="offline",
            resources=resources,
            warnings=warnings,
            notes=notes,
        )

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        """``pulumi up``, then record the deployment. Blocking; the previous deployment
        keeps serving if this fails (Pulumi updates in place)."""
        engine = self.engine(ctx)
        for warning in self._all_warnings(ctx):
            ctx.reporter.warn(warning)
        program = self.deploy_program(ctx=ctx, bundle=bundle)
        ledger = Ledger(ctx.state)
        with ctx.state.lock(on_wait=ctx.reporter.step):
            version_no = ctx.state.next_version(ctx.stage, self.name)
            base: dict[str, Any] = {"stage": ctx.stage, "provider": self.name,
                                    "version": version_no}
            try:
                outputs = engine.up(program, on_output=ctx.reporter.detail)
            except DeployError as exc:
                ledger.append(HistoryEvent(**base, event="deploy-failed", error=exc.message))
                raise
            url = self.endpoint(outputs)
            artifact = str(archive_artifact(ctx, bundle.model_sha256))
            traffic = list(self.traffic_after(ctx, version_no, outputs))
            info = VersionInfo(version=version_no, model_sha256=bundle.model_sha256,
                               lock_hash=bundle.lock_hash, artifact=artifact)
            record = DeploymentRecord(
                **base, name=ctx.name, url=url, outputs=StackOutputs(**outputs),
                stack=self.stack_name(ctx), model_sha256=bundle.model_sha256,
                lock_hash=bundle.lock_hash, artifact=artifact,
                traffic=[Live.of(t) for t in traffic], versions={str(version_no): info},
            )  # fmt: skip
            ledger.write(record)
            ledger.append(HistoryEvent(**base, event="deploy", url=url, artifact=artifact,
                                       model_sha256=bundle.model_sha256,
                                       lock_hash=bundle.lock_hash))  # fmt: skip
        return DeployResult(
            provider=self.name,
            stage=ctx.stage,
            url=url,
            version=version_no,
            outputs=outputs,
            notes=bundle.notes,
            traffic=tuple(traffic),
        )

    def traffic_after(
        self, ctx: ProviderContext, version: int, outputs: dict[str, Any]
    ) -> tuple[LiveVersion, ...]:
        """The stage's live versions after deploying ``version`` (override where the
        target keeps several: the default is the new one alone, at 100 percent)."""
        return (LiveVersion(version=version, percent=100.0, role="primary"),)

    def rollback(self, *, ctx: ProviderContext, version: int | None = None) -> DeployResult:
        """Deploy again the model artifact of an earlier version (default: the one before
        the current) as a new version. Needs what deploy needs (the Pulumi CLI).
        Raises DeployError when that version's archived artifact is not on disk."""
        ledger = Ledger(ctx.state)
        archived = {e.version: e.artifact for e in ledger.deployed(ctx.stage, self.name)
                    if e.artifact and e.version is not None}  # fmt: skip
        chosen = ledger.rollback_target(ctx.stage, self.name, version=version,
                                        candidates=list(archived))  # fmt: skip
        artifact = Path(str(archived[chosen]))
        if not artifact.is_dir():
            raise DeployError(
                f"the artifact of version {chosen} is gone from {artifact}",
                hint="save that model version again and run `slml deploy`",
            )
        ctx.reporter.step(f"rolling back to the model of version {chosen}")
        again = replace(ctx, config=ctx.config.model_copy(update={"model": artifact}))
        self.preflight(ctx=again)
        return self.deploy(ctx=again, bundle=self.build(ctx=again))

    def destroy(self, *, ctx: ProviderContext, force: bool = False) -> None:
        """``pulumi destroy``, then forget the record (only once the resources are gone).
        Idempotent: with nothing recorded it says so and returns (`slml list` shows what
        is deployed). An unreadable record raises RecordUnreadable unless ``force``: then
        the stack (known by its name) is destroyed and the record set aside."""
        try:
            unreadable = False
            recorded = ctx.state.read_record(ctx.stage, self.name) is not None
        except RecordUnreadable:
            if not force:
                raise
            recorded, unreadable = True, True
        if not recorded:
            ctx.reporter.step(
                f"no {self.name} deployment is recorded for stage {ctx.stage}; nothing to destroy"
            )
            return
        engine = self.engine(ctx)
        with ctx.state.lock(on_wait=ctx.reporter.step):
            ctx.reporter.step(f"destroying every {self.name} resource of stage {ctx.stage}")
            engine.destroy(on_output=ctx.reporter.detail)
            ledger = Ledger(ctx.state)
            if unreadable:
                ledger.set_aside(ctx.stage, self.name)
            ledger.delete(ctx.stage, self.name)
            ledger.append(HistoryEvent(stage=ctx.stage, provider=self.name, event="destroy"))

    # -- operations (override where the target supports them) ----------------------------
    def record(self, ctx: ProviderContext) -> dict[str, Any]:
        """The current deployment record; raises NotDeployed when there is none."""
        rec = ctx.state.read_record(ctx.stage, self.name)
        if rec is None:
            raise NotDeployed(
                f"no {self.name} deployment is recorded for stage {ctx.stage!r}",
                hint=f"run `slml deploy --provider {self.name}` first",
            )
        return rec
