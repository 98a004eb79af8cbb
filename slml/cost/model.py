"""The data of a cost estimate: what was assumed (``Usage``), each priced line
(``CostLine``) and the whole (``CostEstimate``). Frozen dataclasses, JSON-ready through
``slml.cli.render.to_data``."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_REQUESTS = 1_000_000
DEFAULT_PREDICT_MS = 10.0


@dataclass(frozen=True)
class Usage:
    """The traffic an estimate assumes. ``duration_ms`` is the time per request; when
    ``add_overhead`` it is the model's own predict time and each cloud adds its
    platform's overhead (a duration stated in slml.yaml is taken as the whole).
    ``source`` says where the figures came from, in words."""

    requests_per_month: int = DEFAULT_REQUESTS
    duration_ms: float = DEFAULT_PREDICT_MS
    add_overhead: bool = True
    source: str = "default"
    storage_bytes: int = 0  # what the deployment stores (zips, layer, image)


@dataclass(frozen=True)
class CostLine:
    """``quantity`` units at ``price`` USD per ``per`` units; ``free`` units of it fall
    in a free tier (``usd_after_free`` counts only the rest)."""

    item: str
    quantity: float
    unit: str
    price: float
    per: float = 1.0
    free: float = 0.0
    note: str = ""
    usd: float = field(init=False)
    usd_after_free: float = field(init=False)

    def __post_init__(self) -> None:  # derived, but fields so --json shows them
        object.__setattr__(self, "usd", self.quantity / self.per * self.price)
        billable = max(self.quantity - self.free, 0.0)
        object.__setattr__(self, "usd_after_free", billable / self.per * self.price)


@dataclass(frozen=True)
class CostEstimate:
    """A monthly estimate for one target: its lines, totals at list price and after the
    free tiers, and how it compares with an alternative (Lambda on arm64)."""

    provider: str
    target: str
    region: str
    usage: Usage
    billed_ms_per_request: float
    lines: tuple[CostLine, ...]
    free_tier: str  # in words: which free tiers exist and whether totals include them
    assumptions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    prices_transcribed: str = ""
    prices_note: str = ""
    alternatives: dict[str, float] = field(default_factory=dict)  # name -> list total
    total_usd: float = field(init=False)
    total_after_free_usd: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_usd", sum(line.usd for line in self.lines))
        after = sum(line.usd_after_free for line in self.lines)
        object.__setattr__(self, "total_after_free_usd", after)
