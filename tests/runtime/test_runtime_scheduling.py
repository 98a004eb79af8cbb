"""The inline-or-thread decision is made from measurements, never guessed."""

from __future__ import annotations

import pytest

from slml.runtime.scheduling import InlinePolicy


def test_first_request_goes_to_a_thread() -> None:
    assert InlinePolicy(budget_s=0.005).inline(100) is False


def test_fast_model_runs_inline_slow_model_does_not() -> None:
    fast = InlinePolicy(budget_s=0.005)
    fast.observe(100, 0.0004)
    assert fast.inline(100)
    slow = InlinePolicy(budget_s=0.005)
    slow.observe(100, 0.050)
    assert not slow.inline(100)


def test_a_much_larger_body_is_expected_to_cost_more() -> None:
    policy = InlinePolicy(budget_s=0.005)
    policy.observe(100, 0.001)
    assert policy.inline(100)
    assert not policy.inline(100 * 10)  # 10x the body, ~10 ms expected: thread


def test_average_follows_a_model_that_became_slow() -> None:
    policy = InlinePolicy(budget_s=0.005)
    policy.observe(100, 0.001)
    for _ in range(40):
        policy.observe(100, 0.030)
    assert not policy.inline(100)


def test_zero_budget_disables_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLML_INLINE_BUDGET_MS", "0")
    policy = InlinePolicy()
    policy.observe(10, 0.000001)
    assert not policy.inline(10)
