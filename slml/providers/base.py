"""The one Provider protocol every target implements, and ``ProviderBase``: the class
every provider subclasses, whose methods are the optional hooks' defaults.

The plain data that flows through the pipeline (``Bundle`` → ``Plan`` /
``DeployResult`` / ``Status``, ``ProviderContext``, ``Reporter``) lives in
``slml.pipeline`` at the bottom floor; it is re-exported here so plug-ins written
against ``slml.providers.base`` keep working.

Methods take keyword-only arguments and one ``ProviderContext``, so adding a parameter
never breaks a provider. Built-ins register through the ``slml.providers`` entry point
group, as a third-party provider would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from slml.errors import ProviderUnavailable
from slml.pipeline import (
    BuildOutputs,
    Bundle,
    DeployResult,
    LambdaBuildOutputs,
    NullReporter,
    Plan,
    PlannedResource,
    ProviderContext,
    Reporter,
    SizeReport,
    Status,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from slml.rollout import LiveVersion, VersionMetrics

__all__ = [
    "BuildOutputs",
    "Bundle",
    "DeployResult",
    "LambdaBuildOutputs",
    "NullReporter",
    "Plan",
    "PlannedResource",
    "Provider",
    "ProviderBase",
    "ProviderContext",
    "ProviderFactory",
    "Reporter",
    "SizeReport",
    "Status",
]


@runtime_checkable
class Provider(Protocol):
    """A deployment target's shape. Every provider subclasses ``ProviderBase`` (below),
    which gives the optional hooks their defaults; see it for what each hook does.
    Rollouts (slml/rollout.py): ``deploy`` honours ``ctx.rollout`` (canary/shadow beside
    the live version) where ``check_rollout`` lets it through, and ``shift`` sets the
    traffic among versions already deployed, without a build; ``DeployResult.traffic``
    is the stage's traffic after it."""

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


SIDE_BY_SIDE = "run several versions side by side (no canary, shadow or promote)"


class ProviderBase:
    """What every provider subclasses (the registry checks it). A subclass sets ``name``
    and ``config_model`` and implements ``build``, ``plan``, ``deploy`` and ``destroy``;
    every other method here is an optional hook whose default says the target cannot
    do it (``ProviderUnavailable``) or does nothing. The pipeline calls them directly."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def build(self, *, ctx: ProviderContext) -> Bundle:
        raise NotImplementedError

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        raise NotImplementedError

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        raise NotImplementedError

    def destroy(self, *, ctx: ProviderContext) -> None:
        raise NotImplementedError

    # -- optional hooks ------------------------------------------------------------------
    def preflight(self, *, ctx: ProviderContext) -> None:
        """Before a deploy's build: raise when the deploy cannot work here (no CLI, a
        rollout mode the target does not serve). Default: nothing to check."""

    def check_rollout(self, ctx: ProviderContext) -> None:
        """Raise ProviderUnavailable for a ``ctx.rollout`` this target cannot serve.
        Default: a plain replacement only."""
        if ctx.rollout is not None and ctx.rollout.mode != "replace":
            raise self._unavailable(SIDE_BY_SIDE, "deploy without --canary/--shadow; `slml "
                                    "rollback` brings an earlier version back")  # fmt: skip

    def shift(self, *, ctx: ProviderContext, traffic: tuple[LiveVersion, ...]) -> DeployResult:
        """Set the traffic among versions already deployed in the stage, no build
        (promote, a canary's rollback, the guard); versions left out are retired."""
        raise self._unavailable(SIDE_BY_SIDE, "deploy without --canary/--shadow")

    def rollback(self, *, ctx: ProviderContext, version: int | None = None) -> DeployResult:
        """Serve an earlier version again (default: the one before the current)."""
        raise self._unavailable("roll back yet",
                                "save the earlier model version again and run `slml deploy`")

    def version_metrics(self, *, ctx: ProviderContext, version: int,
                        window: float) -> VersionMetrics:  # fmt: skip
        """A live version's own figures over the last ``window`` seconds (the guard)."""
        raise self._unavailable("report per-version metrics yet; no guard")

    def kept_bundle(self, *, ctx: ProviderContext, version: int) -> Bundle | None:
        """The exact bundle a deployed version runs (``promote --from``); None: the
        pipeline builds its archived artifact again."""
        return None

    def status(self, *, ctx: ProviderContext) -> Status:
        raise self._unavailable("report a status")

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise self._unavailable("invoke a deployment")

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        raise self._unavailable("show logs")

    def _unavailable(self, what: str, hint: str | None = None) -> ProviderUnavailable:
        return ProviderUnavailable(f"the {self.name} provider cannot {what}", hint=hint)
