"""The one Provider protocol every target implements, and the plain data that flows
through the pipeline: ``Bundle`` → ``Plan`` / ``DeployResult`` / ``Status``.

Methods take keyword-only arguments and one ``ProviderContext``, so adding a parameter
never breaks a provider. Built-ins register through the ``slml.providers`` entry point
group, as a third-party provider would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from slml.config import ProjectConfig
    from slml.cost import CostEstimate
    from slml.rollout import LiveVersion, RolloutRequest
    from slml.state import ProjectState


class Reporter(Protocol):
    """Progress sink. The CLI renders it with Rich; tests collect it in a list."""

    def step(self, message: str) -> None: ...
    def detail(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


class NullReporter:
    """A Reporter that keeps what it is told, for tests and the Python API."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def step(self, message: str) -> None:
        self.events.append(("step", message))

    def detail(self, message: str) -> None:
        self.events.append(("detail", message))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))


@dataclass(frozen=True)
class ProviderContext:
    """Everything a provider call may need, injected: config, project state, progress."""

    config: ProjectConfig
    state: ProjectState
    reporter: Reporter = field(default_factory=NullReporter)
    debug: bool = False
    rollout: RolloutRequest | None = None  # None: replace the live version (slml/rollout.py)

    @property
    def project_dir(self) -> Path:
        return self.state.root

    @property
    def stage(self) -> str:
        return self.config.stage

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class SizeReport:
    """Sizes in bytes; ``largest`` lists (package, unzipped bytes), biggest first."""

    unzipped: int
    zipped: int | None = None
    largest: tuple[tuple[str, int], ...] = ()
    parts: dict[str, int] = field(default_factory=dict)  # e.g. {"layer": ..., "function": ...}


@dataclass(frozen=True)
class Bundle:
    """A built, self-contained deployable for one target. ``path`` is a directory."""

    provider: str
    path: Path
    lock_hash: str
    model_sha256: str
    python_version: str
    platform: str
    size: SizeReport
    files: dict[str, Path] = field(default_factory=dict)  # named outputs: zip, layer, context
    notes: tuple[str, ...] = ()  # decisions the build took and why, in words
    reused: bool = False  # dependencies came from cache


@dataclass(frozen=True)
class PlannedResource:
    """One resource of a plan: what would be created, with the inputs that matter."""

    type: str  # e.g. aws:lambda/function:Function
    name: str  # logical name
    inputs: dict[str, Any] = field(default_factory=dict)
    unknowns: tuple[str, ...] = ()  # inputs only known after deploy
    op: Literal["create", "update", "replace", "delete", "same", "run"] = "create"
    parent: str | None = None


@dataclass(frozen=True)
class Plan:
    """What deploy would do. ``kind`` says how it was obtained."""

    provider: str
    stage: str
    kind: Literal["local", "offline", "pulumi"]
    resources: tuple[PlannedResource, ...] = ()
    steps: tuple[str, ...] = ()  # plain-words steps (local provider)
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    cost: CostEstimate | None = None  # estimated monthly cost (slml/cost), filled by api


@dataclass(frozen=True)
class DeployResult:
    provider: str
    stage: str
    url: str
    version: int
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    traffic: tuple[LiveVersion, ...] = ()  # the stage's live versions after this deploy


@dataclass(frozen=True)
class Status:
    provider: str
    stage: str
    state: Literal["running", "stopped", "down", "not-deployed", "unknown", "deployed"]
    url: str | None = None
    version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    traffic: tuple[LiveVersion, ...] = ()  # live versions with their share (empty: one)


@runtime_checkable
class Provider(Protocol):
    """A deployment target. Only ``name``, ``config_model``, ``build``, ``plan``,
    ``deploy`` and ``destroy`` are required; the operations may raise
    ``ProviderUnavailable`` where a target cannot support them. Optional methods the
    pipeline calls when present: ``preflight(ctx=)`` (before a deploy's build: raise if
    deploy cannot work here) and ``rollback(ctx=, version=)``. Rollouts (slml/rollout.py):
    ``deploy`` honours ``ctx.rollout`` (canary/shadow beside the live version), and

    - ``shift(*, ctx, traffic: tuple[LiveVersion, ...]) -> DeployResult`` sets the traffic
      among versions already deployed in the stage, without a build (promote, rollback
      of a canary, the guard); versions left out are retired. ``DeployResult.traffic``
      is the stage's traffic after it. Without it, ``--canary``/``--shadow``/``promote``
      raise ProviderUnavailable.
    - ``version_metrics(*, ctx, version: int, window: float) -> VersionMetrics`` a live
      version's own figures over the last ``window`` seconds, for the guard.
    - ``kept_bundle(*, ctx, version: int) -> Bundle`` the exact bundle a version runs
      (for ``promote --from``); without it, its archived artifact is built again."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def build(self, *, ctx: ProviderContext) -> Bundle: ...
    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan: ...
    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult: ...
    def destroy(self, *, ctx: ProviderContext) -> None: ...
    def status(self, *, ctx: ProviderContext) -> Status: ...
    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]: ...
    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]: ...


ProviderFactory = Callable[[], Provider]
