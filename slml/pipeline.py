"""The plain data that flows between the pipeline's stages, at the bottom floor.

``ProviderContext`` goes into a provider call; a build returns a ``Bundle`` (with its
target's typed ``outputs``, e.g. ``LambdaBuildOutputs``); a preview returns a ``Plan``
of ``PlannedResource``; a deploy returns a ``DeployResult``; ``status`` a ``Status``.
Progress goes to a ``Reporter``. Everything here is a frozen dataclass or a protocol.

This module imports nothing of slml at run time (types only, under TYPE_CHECKING), so
``slml.bundle``, ``slml.engine``, ``slml.batch`` and the providers can all import it
without importing each other (tests/test_layers.py asserts it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from slml.config import ProjectConfig
    from slml.cost import CostEstimate
    from slml.rollout import LiveVersion, RolloutRequest
    from slml.state import ProjectState

__all__ = [
    "BuildOutputs",
    "Bundle",
    "DeployResult",
    "LambdaBuildOutputs",
    "LambdaDelivery",
    "NullReporter",
    "Plan",
    "PlannedResource",
    "ProviderContext",
    "Reporter",
    "SizeReport",
    "Status",
]


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


class BuildOutputs:
    """Base of a target's typed build outputs (``Bundle.outputs``): the files a build
    wrote and the decisions it took, as fields, so a provider reads them and never
    recomputes them."""


LambdaDelivery = Literal["direct", "s3", "image"]
DeploymentState = Literal["running", "stopped", "down", "not-deployed", "unknown", "deployed"]


@dataclass(frozen=True)
class LambdaBuildOutputs(BuildOutputs):
    """What the Lambda build wrote and decided. ``delivery`` is how the code reaches
    Lambda (zips uploaded directly, through S3, or as a container image), ``reason``
    why, in words; ``image_context`` is set only for ``delivery == "image"``."""

    function_zip: Path
    layer_zip: Path | None  # None only for a bundle made by hand without a layer
    function_dir: Path
    layer_dir: Path
    delivery: LambdaDelivery
    reason: str
    image_context: Path | None = None


@dataclass(frozen=True)
class Bundle:
    """A built, self-contained deployable for one target. ``path`` is a directory.

    ``files`` names the outputs by key (zip, layer, context...) for generic readers;
    ``outputs`` is the target's typed view of them, with the build's decisions, when
    the builder provides one (None for a bundle made by hand, e.g. in a test)."""

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
    outputs: BuildOutputs | None = None


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
    """A finished deploy: where it answers, the record's version, the stack outputs."""

    provider: str
    stage: str
    url: str
    version: int
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    traffic: tuple[LiveVersion, ...] = ()  # the stage's live versions after this deploy


@dataclass(frozen=True)
class Status:
    """What a target says about one stage now."""

    provider: str
    stage: str
    state: DeploymentState
    url: str | None = None
    version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    traffic: tuple[LiveVersion, ...] = ()  # live versions with their share (empty: one)
