"""Traffic among live versions for the Pulumi-backed clouds: ``deploy`` honouring
``ctx.rollout`` and ``shift`` (promote, rollback, guard) without a build.

A subclass of ``RolloutProvider`` writes a ``program(*, ctx, bundle, traffic=None)``
that maps a live set (``slml.providers.traffic``) onto its target and exports it as the
``traffic`` output, with each version's handle as ``ref``. This base:

- ``deploy``: the usual deploy, then keeps the deployed bundle's files (hard links,
  else copies) under ``.slml/<provider>/<stage>/deployed/`` with a ``bundle.json``, so a
  later ``shift`` reruns the same program on the same bytes: Pulumi sees no code change
  and publishes nothing new. Returns the traffic in ``DeployResult.traffic``.
- ``shift(*, ctx, traffic)``: checks the live set, fills refs from the stack's outputs,
  runs ``pulumi up`` with the kept bundle and updates the record's outputs. Blocking;
  needs the Pulumi CLI. Raises DeployError when nothing was deployed or the kept bundle
  is gone.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from slml.engine import Program
from slml.errors import DeployError
from slml.ledger import StackOutputs
from slml.providers import traffic as tr
from slml.providers.base import Bundle, DeployResult, Plan, ProviderContext, SizeReport
from slml.providers.pulumi_base import PulumiProvider
from slml.rollout import LiveVersion, VersionMetrics

BUNDLE_JSON = "bundle.json"


class RolloutProvider(PulumiProvider):
    """A PulumiProvider whose program routes traffic among live versions."""

    max_answering: ClassVar[int] = 2  # versions with a share of traffic at once
    ref_output: ClassVar[str] = ""  # single-version output naming the live handle

    def __init__(self, *, metrics_client: Any = None, **kwargs: Any) -> None:
        """``metrics_client``: the monitoring client (or transport) the guard's reads
        use, injected in tests; None builds the real one (slml/metrics)."""
        super().__init__(**kwargs)
        self._metrics_client = metrics_client

    def program(
        self, *, ctx: ProviderContext, bundle: Bundle,
        traffic: tuple[LiveVersion, ...] | None = None,
    ) -> Program:  # fmt: skip
        raise NotImplementedError

    # -- the live set a program serves ---------------------------------------------------
    def planned_traffic(self, ctx: ProviderContext) -> tuple[LiveVersion, ...]:
        """What the next deploy serves (``ctx.rollout``), refs known so far filled in."""
        self.check_rollout(ctx)
        version = ctx.state.next_version(ctx.stage, self.name)
        primary = tr.current_primary_ref(ctx, self.name, self.ref_output)
        live = tr.planned(ctx.rollout, version, primary_ref=primary)
        known = tr.known_refs(ctx, self.name)
        live = tuple(
            replace(v, ref=known.get(v.version) or self.default_ref(v.version))
            if v.ref is None else v
            for v in live
        )  # fmt: skip
        unknown = [v.version for v in live if v.ref is None]
        if unknown:
            raise DeployError(
                f"--{tr.mode(ctx)}: the {self.name} handle of live version {unknown[0]} is "
                "not recorded (deployed before slml tracked versions), so traffic cannot be "
                "split with it",
                hint=f"run `slml deploy --provider {self.name}` once without --canary/--shadow",
            )
        return live

    def check_rollout(self, ctx: ProviderContext) -> None:
        """Raise ProviderUnavailable for a rollout mode this target cannot serve."""

    def check_new_artifact(self, ctx: ProviderContext, bundle: Bundle) -> None:
        """A canary or shadow of the very artifact and lock the live primary serves
        would compare a version with itself (and on Lambda publish no new version):
        raise DeployError."""
        rollout, record = ctx.rollout, ctx.state.read_record(ctx.stage, self.name) or {}
        if rollout is None or rollout.mode == "replace" or rollout.primary is None:
            return
        same = (record.get("version") == rollout.primary.version
                and record.get("model_sha256") == bundle.model_sha256
                and record.get("lock_hash") == bundle.lock_hash)  # fmt: skip
        if same:
            raise DeployError(
                f"--{rollout.mode}: this build is the artifact and dependency lock that "
                f"version {rollout.primary.version} already serves",
                hint="save the new model version first, then deploy it with "
                f"--{rollout.mode}",
            )

    def default_ref(self, version: int) -> str | None:
        """The handle of ``version`` when the target derives it from the number alone."""
        return None

    def preview_traffic(self, ctx: ProviderContext) -> tuple[LiveVersion, ...]:
        """The live set a preview describes: ``planned_traffic``, with the new version's
        handle where the target names it before deploying."""
        return self.planned_traffic(ctx)

    def describe_traffic(self, live: tuple[LiveVersion, ...]) -> list[str]:
        """The target's routing of ``live`` in words, for the plan's notes."""
        return [f"traffic: {tr.describe(live, lambda v: v.ref)}"]

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        """The base plan, with the traffic change in its notes."""
        live = self.preview_traffic(ctx)
        plan = super().plan(ctx=ctx, bundle=bundle)
        notes = (*plan.notes, *self.plan_notes(ctx), *self.describe_traffic(live))
        return replace(plan, notes=notes)

    def plan_notes(self, ctx: ProviderContext) -> list[str]:
        """More lines for the plan's notes (settings a table row would cut short)."""
        return []

    # -- deploy and shift ----------------------------------------------------------------
    def preflight(self, *, ctx: ProviderContext) -> None:
        """Before any build: the rollout mode is one this target serves, and the CLI."""
        self.check_rollout(ctx)
        super().preflight(ctx=ctx)

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        self.check_rollout(ctx)
        self.check_new_artifact(ctx, bundle)
        result = super().deploy(ctx=ctx, bundle=bundle)
        keep_bundle(self.kept_dir(ctx), bundle)
        return replace(result, traffic=output_traffic(result.outputs))

    def traffic_after(
        self, ctx: ProviderContext, version: int, outputs: dict[str, Any]
    ) -> tuple[LiveVersion, ...]:
        """The live set the program exported (a canary beside its primary), so the
        record's ``traffic`` is what `slml promote` and `slml rollback` act on."""
        return output_traffic(outputs) or super().traffic_after(ctx, version, outputs)

    def shift(self, *, ctx: ProviderContext, traffic: tuple[LiveVersion, ...]) -> DeployResult:
        """Route ``traffic`` among versions already deployed; no build, no new version.
        The record's ``traffic`` becomes the new live set (the caller, slml.api, writes
        the history event)."""
        tr.check_shift(traffic, max_answering=self.max_answering)
        record = self.record(ctx)
        wanted = tr.fill_refs(traffic, tr.known_refs(ctx, self.name), self.name)
        bundle = load_kept_bundle(self.kept_dir(ctx), self.name)
        engine = self.engine(ctx)
        program = self.program(ctx=ctx, bundle=bundle, traffic=wanted)
        ctx.reporter.step(f"shifting traffic: {tr.describe(wanted, lambda v: v.ref)}")
        with ctx.state.lock(on_wait=ctx.reporter.step):
            outputs = engine.up(program, on_output=ctx.reporter.detail)
            live = output_traffic(outputs) or wanted
            ctx.state.write_record(ctx.stage, self.name, {
                **record, "outputs": outputs, "traffic": [v.to_json() for v in live]})
        return DeployResult(
            provider=self.name, stage=ctx.stage, url=self.endpoint(outputs),
            version=int(record["version"]), outputs=outputs, traffic=live,
        )  # fmt: skip

    # -- the guard -----------------------------------------------------------------------
    def version_metrics(self, *, ctx: ProviderContext, version: int,
                        window: float = 60.0) -> VersionMetrics:  # fmt: skip
        """``version``'s own figures over the last ``window`` seconds (at least one
        minute, the monitoring services' step) from the target's monitoring service
        (slml/metrics), found by the version's handle: Lambda's published version,
        the Cloud Run revision, the SageMaker variant. No data yet: zero requests."""
        from slml.metrics import live_metrics

        ref = tr.known_refs(ctx, self.name).get(version)
        names = {ref} if ref else {str(version), f"v{version}"}
        window_s = max(60, math.ceil(window))
        found = next((m for m in live_metrics(ctx, window_s=window_s,
                                              clients=self._metrics_client)
                      if m.version in names), None)  # fmt: skip
        if found is None:
            return VersionMetrics(version=version, window_s=window, requests=0, errors=0)
        return VersionMetrics(
            version=version, window_s=window, requests=found.requests, errors=found.errors,
            p50_ms=found.p50_ms, p99_ms=found.p99_ms, errors_by_code=found.errors_by_code,
        )  # fmt: skip

    def kept_dir(self, ctx: ProviderContext) -> Path:
        return ctx.state.stage_dir(self.name, ctx.stage) / "deployed"

    def recorded_traffic(self, ctx: ProviderContext) -> tuple[LiveVersion, ...]:
        """For ``Status.traffic``: the live set the stack outputs recorded."""
        return tr.recorded(ctx, self.name)


def output_traffic(outputs: dict[str, Any]) -> tuple[LiveVersion, ...]:
    """The ``traffic`` stack output as live versions (empty when absent)."""
    return StackOutputs.model_validate(outputs).live()


def traffic_output(traffic: tuple[LiveVersion, ...], new_ref: Any) -> Any:
    """The ``traffic`` stack output: ``traffic`` with NEW replaced by ``new_ref`` (a
    Pulumi output, known after deploy)."""
    import pulumi

    return pulumi.Output.from_input(new_ref).apply(
        lambda ref: [v.to_json() for v in tr.resolve_new(traffic, str(ref) if ref else None)]
    )


def export_traffic(ctx: ProviderContext, provider: str, traffic: Any) -> None:
    """Export ``traffic`` (a list of live-version dicts, or an Output of one) and the
    ``versions`` handles remembered with it (for a later rollback). Inside a program."""
    import pulumi

    known = tr.known_refs(ctx, provider)
    out = pulumi.Output.from_input(traffic)
    pulumi.export("traffic", out)
    pulumi.export("versions", out.apply(lambda live: tr.remember(known, live)))


def keep_bundle(dest: Path, bundle: Bundle) -> None:
    """Keep ``bundle``'s files (not its directories) in ``dest`` with a ``bundle.json``
    describing it. Replaces what was kept before; atomic per file."""
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: dict[str, str] = {}
    for key, path in bundle.files.items():
        if path.is_file():
            target = tmp / f"{key}-{path.name}"
            _link_or_copy(path, target)
            files[key] = str(dest / target.name)
        else:
            files[key] = str(path)
    info = {
        "provider": bundle.provider, "path": str(bundle.path), "lock_hash": bundle.lock_hash,
        "model_sha256": bundle.model_sha256, "python_version": bundle.python_version,
        "platform": bundle.platform, "unzipped": bundle.size.unzipped,
        "zipped": bundle.size.zipped, "files": files, "notes": list(bundle.notes),
    }  # fmt: skip
    (tmp / BUNDLE_JSON).write_text(json.dumps(info, indent=1), encoding="utf-8")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def load_kept_bundle(dest: Path, provider: str) -> Bundle:
    """The bundle ``keep_bundle`` kept. Raises DeployError when it is missing."""
    try:
        info = json.loads((dest / BUNDLE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DeployError(
            f"the deployed {provider} bundle is not kept at {dest} (deployed before slml "
            "kept bundles, or removed)",
            hint=f"run `slml deploy --provider {provider}` once; then traffic can shift",
        ) from None
    files = {k: Path(v) for k, v in info["files"].items()}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise DeployError(
            f"files of the deployed {provider} bundle are gone: {', '.join(missing)}",
            hint=f"run `slml deploy --provider {provider}` again",
        )
    return Bundle(
        provider=info["provider"], path=Path(info["path"]), lock_hash=info["lock_hash"],
        model_sha256=info["model_sha256"], python_version=info["python_version"],
        platform=info["platform"], files=files, notes=tuple(info["notes"]),
        size=SizeReport(unzipped=info["unzipped"], zipped=info["zipped"]),
    )  # fmt: skip
