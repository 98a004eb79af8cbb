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
