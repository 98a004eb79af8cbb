"""Traffic between live versions of one stage: the shared vocabulary of rollouts.

A stage serves one or more *live versions*, each with a share of traffic and a role.
``slml deploy`` replaces the live set (today's behaviour), or with ``--canary P`` adds
the new version beside the primary with P percent, or with ``--shadow`` adds it as a
shadow (it sees a copy of live traffic; its answers are captured and never returned).
``slml promote`` gives the canary 100 percent and retires the old primary; ``slml
rollback`` returns all traffic to the previous version.

This module is plain data at the bottom floor: the ledger stores it, providers read
it from ``ProviderContext.rollout`` and answer it in ``DeployResult.traffic`` /
``Status.traffic``, the CLI prints it. Providers that cannot honour a mode raise
``ProviderUnavailable`` saying why and what to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["primary", "canary", "shadow"]
Mode = Literal["replace", "canary", "shadow"]


@dataclass(frozen=True)
class LiveVersion:
    """One version serving in a stage. ``percent`` is its share of answered traffic
    (0 for a shadow, which gets a mirrored copy instead). ``ref`` is the target's own
    handle for it: a Lambda version number, a Cloud Run revision, a SageMaker variant
    name, a local port."""

    version: int
    percent: float
    role: Role
    ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version, "percent": self.percent,
                                "role": self.role}
        if self.ref is not None:
            data["ref"] = self.ref
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveVersion:
        return cls(version=int(data["version"]), percent=float(data["percent"]),
                   role=data["role"], ref=data.get("ref"))


@dataclass(frozen=True)
class RolloutRequest:
    """What a deploy does with traffic. ``live`` is what serves the stage now, from
    the ledger, before this deploy (empty on a first deploy)."""

    mode: Mode = "replace"
    percent: float = 100.0  # the new version's share for "canary"; ignored otherwise
    live: tuple[LiveVersion, ...] = ()

    @property
    def primary(self) -> LiveVersion | None:
        return next((v for v in self.live if v.role == "primary"), None)


def traffic_json(traffic: tuple[LiveVersion, ...]) -> list[dict[str, Any]]:
    """The ``"traffic"`` list of ``slml status --json``."""
    return [v.to_json() for v in traffic]


@dataclass(frozen=True)
class VersionMetrics:
    """One live version's own figures over the last ``window_s`` seconds, what the guard
    judges: answered requests, those that failed with a 5xx, and latency quantiles.
    Providers return it from the optional ``version_metrics(ctx=, version=, window=)``
    (local: the router's counters; clouds: their monitoring service)."""

    version: int
    window_s: float
    requests: int
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors_by_code: dict[str, int] | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "window_s": self.window_s, "requests": self.requests,
                "errors": self.errors, "error_rate": round(self.error_rate, 4),
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "errors_by_code": self.errors_by_code or {}}  # fmt: skip


def split(primary: LiveVersion, new_version: int, mode: Mode, percent: float,
          new_ref: str | None = None) -> tuple[LiveVersion, ...]:  # fmt: skip
    """The stage's traffic after adding ``new_version`` beside ``primary`` in ``mode``."""
    if mode == "canary":
        return (LiveVersion(primary.version, 100.0 - percent, "primary", primary.ref),
                LiveVersion(new_version, percent, "canary", new_ref))  # fmt: skip
    if mode == "shadow":
        return (LiveVersion(primary.version, 100.0, "primary", primary.ref),
                LiveVersion(new_version, 0.0, "shadow", new_ref))  # fmt: skip
    return (LiveVersion(new_version, 100.0, "primary", new_ref),)


def promoted(live: tuple[LiveVersion, ...]) -> tuple[LiveVersion, ...]:
    """The canary (else the shadow) at 100 percent as the primary; the old primary goes.
    Raises ValueError when there is nothing to promote."""
    candidate = next((v for v in live if v.role == "canary"), None) or next(
        (v for v in live if v.role == "shadow"), None)
    if candidate is None:
        raise ValueError("no canary or shadow version is live")
    return (LiveVersion(candidate.version, 100.0, "primary", candidate.ref),)


def dropped(live: tuple[LiveVersion, ...]) -> tuple[LiveVersion, ...]:
    """Only the primary, at 100 percent (a rolled-back canary or shadow). Raises
    ValueError when there is no primary."""
    primary = next((v for v in live if v.role == "primary"), None)
    if primary is None:
        raise ValueError("no primary version is live")
    return (LiveVersion(primary.version, 100.0, "primary", primary.ref),)
