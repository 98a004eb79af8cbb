"""The one Provider protocol every target implements.

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

__all__ = [
    "BuildOutputs",
    "Bundle",
    "DeployResult",
    "LambdaBuildOutputs",
    "NullReporter",
    "Plan",
    "PlannedResource",
    "Provider",
    "ProviderContext",
    "ProviderFactory",
    "Reporter",
    "SizeReport",
    "Status",
]


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
