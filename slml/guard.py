"""The rollout guard: judge a canary from its own figures over a window.

``judge`` is pure: a breach is an error rate above ``max_error_rate`` or a p99 above
``max_p99_ms``, judged only once ``min_requests`` requests were answered. ``watch``
polls the figures until a breach or the end of the window; ``slml.api.guard`` acts on
the verdict (roll back, or promote with ``--auto-promote``) and records it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from slml.config.sections import GuardConfig
from slml.rollout import VersionMetrics

Outcome = Literal["breached", "held", "too-few", "watching"]
POLL_S = 1.0


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    metrics: VersionMetrics
    reason: str


def judge(metrics: VersionMetrics, limits: GuardConfig, *, final: bool) -> Judgement:
    """The verdict on ``metrics``; ``final``: the window is over (held or too few)."""
    if metrics.requests >= limits.min_requests:
        if metrics.error_rate > limits.max_error_rate:
            return Judgement("breached", metrics, (
                f"error rate {metrics.error_rate:.1%} ({metrics.errors} of {metrics.requests} "
                f"requests) is above the guard's {limits.max_error_rate:.1%}"))  # fmt: skip
        p99 = metrics.p99_ms
        if limits.max_p99_ms is not None and p99 is not None and p99 > limits.max_p99_ms:
            return Judgement("breached", metrics, (
                f"p99 latency {p99:.1f} ms is above the guard's {limits.max_p99_ms:g} ms"))
    if not final:
        return Judgement("watching", metrics, "within the thresholds so far")
    if metrics.requests < limits.min_requests:
        return Judgement("too-few", metrics, (
            f"only {metrics.requests} requests in {limits.window:g} s, fewer than the "
            f"{limits.min_requests} the guard needs to judge: nothing changed"))
    return Judgement("held", metrics, (
        f"held for {limits.window:g} s: error rate {metrics.error_rate:.1%}, p99 "
        f"{metrics.p99_ms} ms over {metrics.requests} requests"))


def watch(fetch: Callable[[], VersionMetrics], limits: GuardConfig, *,
          clock: Callable[[], float], sleep: Callable[[float], None],
          report: Callable[[str], None], poll: float = POLL_S) -> Judgement:  # fmt: skip
    """Poll ``fetch`` until a breach or ``limits.window`` seconds pass; the verdict."""
    deadline = clock() + limits.window
    while True:
        final = clock() >= deadline
        verdict = judge(fetch(), limits, final=final)
        m = verdict.metrics
        report(f"guard: v{m.version} {m.requests} requests, error rate {m.error_rate:.1%}, "
               f"p99 {m.p99_ms} ms ({verdict.outcome})")
        if verdict.outcome != "watching":
            return verdict
        sleep(min(poll, max(deadline - clock(), 0.0)))
