"""Traffic plans for the cloud providers: from a ``RolloutRequest`` (or the live set a
``shift`` asks for) to the stage's live versions, before each target maps them onto its
native mechanism (Lambda alias weights, Cloud Run revision traffic, SageMaker variant
weights).

Pure functions over ``slml.rollout`` data. A version this deploy creates has no target
handle yet: its ``ref`` is ``NEW`` until the stack outputs name it (``resolve_new``).
Raise ``ProviderUnavailable`` (a mode a target cannot serve) or ``DeployError`` (a
request that cannot be met: no live version to canary beside, shares that do not add up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from slml.errors import DeployError, ProviderUnavailable
from slml.ledger import StackOutputs
from slml.providers.base import ProviderContext
from slml.rollout import LiveVersion, RolloutRequest

NEW = "$new"  # ref placeholder: the version this deploy publishes
TOLERANCE = 0.01  # percent points: shares must add up to 100 within this


def mode(ctx: ProviderContext) -> str:
    return ctx.rollout.mode if ctx.rollout is not None else "replace"


def refuse(provider: str, what: str, why: str, instead: str) -> ProviderUnavailable:
    """The error for a rollout mode a target cannot serve, saying why and what to use."""
    return ProviderUnavailable(f"--provider {provider} cannot {what}: {why}", hint=instead)


def planned(
    rollout: RolloutRequest | None, version: int, *, primary_ref: str | None = None
) -> tuple[LiveVersion, ...]:
    """The live set once ``version`` is deployed under ``rollout``: replace → the new
    version alone; canary P → the live primary at 100-P and the new one at P; shadow →
    the primary at 100 and the new one mirrored (0). ``primary_ref`` fills a primary
    whose ledger entry carries no ref. Raises DeployError without a live primary or
    with a canary share outside 0 < P < 100."""
    if rollout is None or rollout.mode == "replace":
        return (LiveVersion(version, 100.0, "primary", NEW),)
    primary = rollout.primary
    if primary is None:
        raise DeployError(
            f"--{rollout.mode} needs a live version to run beside, and this stage has none",
            hint="deploy the first version without --canary/--shadow",
        )
    if primary.ref is None and primary_ref is not None:
        primary = replace(primary, ref=primary_ref)
    if rollout.mode == "canary":
        share = float(rollout.percent)
        if not 0 < share < 100:
            raise DeployError(
                f"--canary {rollout.percent}: the share must be above 0 and below 100",
                hint="e.g. --canary 10; `slml promote` gives a canary 100%",
            )
        return (replace(primary, percent=100.0 - share, role="primary"),
                LiveVersion(version, share, "canary", NEW))  # fmt: skip
    return (replace(primary, percent=100.0, role="primary"),
            LiveVersion(version, 0.0, "shadow", NEW))  # fmt: skip


def check_shift(traffic: tuple[LiveVersion, ...], *, max_answering: int) -> None:
    """A live set a ``shift`` may apply: one primary, answering shares adding up to 100,
    at most ``max_answering`` versions with a share. Raises DeployError otherwise."""
    answering = [v for v in traffic if v.role != "shadow"]
    if sum(1 for v in traffic if v.role == "primary") != 1:
        raise DeployError("a traffic shift needs exactly one primary version")
    total = sum(v.percent for v in answering)
    if abs(total - 100.0) > TOLERANCE:
        raise DeployError(f"the traffic shares add up to {total:g}%, not 100%")
    if len(answering) > max_answering:
        raise DeployError(
            f"{len(answering)} versions with a share of traffic; this target serves at "
            f"most {max_answering} at once",
            hint="`slml promote` or `slml rollback` first",
        )


def fill_refs(
    traffic: tuple[LiveVersion, ...], known: dict[int, str], provider: str
) -> tuple[LiveVersion, ...]:
    """``traffic`` with every missing ref taken from ``known`` (version → ref, from the
    stack outputs). Raises DeployError for a version the stack never served."""
    out = []
    for live in traffic:
        ref = live.ref if live.ref not in (None, NEW) else known.get(live.version)
        if ref is None:
            served = ", ".join(str(v) for v in sorted(known)) or "none"
            raise DeployError(
                f"version {live.version} is not deployed on {provider} in this stage "
                f"(versions it can route to: {served})",
                hint="`slml status --json` lists the live versions",
            )
        out.append(replace(live, ref=ref))
    return tuple(out)


def resolve_new(traffic: tuple[LiveVersion, ...], new_ref: str | None) -> tuple[LiveVersion, ...]:
    """``traffic`` with the NEW placeholder replaced by the deployed handle."""
    return tuple(replace(v, ref=new_ref) if v.ref == NEW else v for v in traffic)


def recorded(ctx: ProviderContext, provider: str) -> tuple[LiveVersion, ...]:
    """The live set the provider's stack outputs recorded at the last deploy or shift
    (``outputs.traffic``); empty when nothing is recorded."""
    return StackOutputs.of(ctx.state.read_record(ctx.stage, provider)).live()


KEEP_VERSIONS = 20  # versions whose handles the ``versions`` output remembers


def known_refs(ctx: ProviderContext, provider: str) -> dict[int, str]:
    """version → ref for the versions the stack served lately (its ``versions`` output,
    so a rollback after a promotion still finds the old one) and serves now."""
    remembered = StackOutputs.of(ctx.state.read_record(ctx.stage, provider)).versions
    known = {int(k): v for k, v in remembered.items()}
    return {**known, **{v.version: v.ref for v in recorded(ctx, provider) if v.ref}}


def remember(known: dict[int, str], traffic: list[dict[str, Any]]) -> dict[str, str]:
    """The ``versions`` output: ``known`` plus the live set's refs, newest kept."""
    merged = {**known, **{int(v["version"]): str(v["ref"]) for v in traffic if v.get("ref")}}
    newest = sorted(merged)[-KEEP_VERSIONS:]
    return {str(k): merged[k] for k in newest}


def current_primary_ref(ctx: ProviderContext, provider: str, fallback_key: str) -> str | None:
    """The live primary's handle from the stack outputs: the recorded traffic, else the
    single-version output ``fallback_key`` (stacks deployed before rollouts)."""
    for live in recorded(ctx, provider):
        if live.role == "primary" and live.ref:
            return live.ref
    outputs = StackOutputs.of(ctx.state.read_record(ctx.stage, provider))
    value = getattr(outputs, fallback_key, None) if fallback_key else None
    return str(value) if value else None


def describe(traffic: tuple[LiveVersion, ...], name: Callable[[LiveVersion], Any]) -> str:
    """One line for plan notes: ``v3 (ref) 90% primary, v4 10% canary``."""
    return ", ".join(
        f"v{v.version} ({name(v)}) {v.percent:g}% {v.role}"
        if v.role != "shadow" else f"v{v.version} ({name(v)}) shadow (mirrored copy)"
        for v in traffic
    )  # fmt: skip
