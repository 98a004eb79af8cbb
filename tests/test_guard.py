"""The guard's judgement, pure: thresholds, minimum requests, the window's end."""

from __future__ import annotations

from slml.config.sections import GuardConfig
from slml.guard import judge, watch
from slml.rollout import VersionMetrics

LIMITS = GuardConfig(max_error_rate=0.05, max_p99_ms=200, window=10, min_requests=20)


def _m(requests: int, errors: int = 0, p99: float | None = 50.0) -> VersionMetrics:
    return VersionMetrics(version=2, window_s=10, requests=requests, errors=errors, p99_ms=p99)


def test_breaches_on_error_rate_and_on_p99() -> None:
    assert judge(_m(100, errors=20), LIMITS, final=False).outcome == "breached"
    slow = judge(_m(100, p99=250.0), LIMITS, final=False)
    assert slow.outcome == "breached" and "p99 latency 250.0 ms" in slow.reason


def test_no_judgement_below_min_requests() -> None:
    assert judge(_m(10, errors=10), LIMITS, final=False).outcome == "watching"
    assert judge(_m(10, errors=10), LIMITS, final=True).outcome == "too-few"


def test_held_only_at_the_end_of_the_window() -> None:
    assert judge(_m(100, errors=1), LIMITS, final=False).outcome == "watching"
    assert judge(_m(100, errors=1), LIMITS, final=True).outcome == "held"


def test_watch_polls_until_the_window_ends() -> None:
    now = [0.0]
    seen: list[str] = []
    figures = iter([_m(5), _m(30), _m(60), _m(90), _m(120)] + [_m(150)] * 20)
    verdict = watch(lambda: next(figures), LIMITS, clock=lambda: now[0],
                    sleep=lambda s: now.__setitem__(0, now[0] + s), report=seen.append,
                    poll=3.0)  # fmt: skip
    assert verdict.outcome == "held" and verdict.metrics.requests == 120
    assert len(seen) == 5 and "(watching)" in seen[0]
