"""One more local worker starts only when it would end the run a model load sooner: never
for a run bound by the parent's reading and writing, nor for one too short to repay the
load, and always for a long run bound by the workers."""

from __future__ import annotations

import pytest

from slml.batch.pace import Pace


def pace(*, parent: float, busy: float, load: float = 1.0) -> Pace:
    measured = Pace(load=load)
    measured.took_to_read(parent / 2)
    measured.took_to_write(parent / 2)
    measured.scored(busy)
    return measured


def test_nothing_is_decided_before_a_partition_was_read_scored_and_written() -> None:
    assert not Pace(load=1.0).worth_one_more(1, None)
    half = Pace(load=1.0)
    half.scored(5.0)
    half.took_to_read(0.001)
    assert not half.worth_one_more(1, None)  # nothing written yet


@pytest.mark.parametrize("left", [None, 10.0, 10_000.0])
def test_a_run_bound_by_the_parent_stays_on_the_running_workers(left: float | None) -> None:
    """The iris case: the parent takes 15 ms a partition, the process 7 ms."""
    assert not pace(parent=0.015, busy=0.007).worth_one_more(1, left)
    assert not pace(parent=0.015, busy=0.020).worth_one_more(2, left)  # 10 ms each with 2


def test_a_run_bound_by_the_workers_grows_when_enough_work_is_left() -> None:
    slow = pace(parent=0.01, busy=0.2, load=1.0)  # a second process saves 0.1 s a partition
    assert slow.worth_one_more(1, None)
    assert slow.worth_one_more(1, 11.0)  # 1.1 s saved > a 1 s load
    assert not slow.worth_one_more(1, 9.0)  # ends before the load would pay
    assert slow.worth_one_more(2, 100.0) and not slow.worth_one_more(2, 20.0)


def test_a_gain_within_the_noise_is_no_reason_to_start() -> None:
    assert not pace(parent=0.0100, busy=0.0105).worth_one_more(1, None)


def test_the_latest_answers_weigh_most() -> None:
    measured = pace(parent=0.01, busy=0.001)
    for _ in range(20):  # the model got slow on these rows
        measured.scored(0.5)
    assert measured.busy == pytest.approx(0.5, rel=0.01)
    assert measured.worth_one_more(1, 100.0)
