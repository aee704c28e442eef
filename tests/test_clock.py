"""The paced clock of the served demo: simulated time at `rate` times the wall clock's pace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firewatch.clock import PacedClock

START = datetime(2026, 4, 4, tzinfo=UTC)


class Wall:
    """A monotonic clock that moves only when slept on (or told to)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def paced(rate: float) -> tuple[PacedClock, Wall]:
    wall = Wall()
    return PacedClock(START, rate, monotonic=wall.monotonic, sleep=wall.sleep), wall


def test_simulated_time_runs_rate_times_as_fast_as_the_wall_clock() -> None:
    clock, wall = paced(1440)
    assert clock.rate == 1440
    assert clock.now() == START
    wall.t += 2.5  # two and a half wall seconds: an hour of simulated time
    assert clock.now() == START + timedelta(hours=1)


def test_waiting_until_a_simulated_time_sleeps_its_wall_clock_equivalent() -> None:
    clock, wall = paced(1440)
    wall.t += 1.0
    assert clock.wait_until(START + timedelta(hours=1)) == START + timedelta(hours=1)
    assert wall.slept == [pytest.approx(1.5)]  # 2.5 s for the hour, 1 s of it gone already


def test_a_time_that_has_come_is_not_waited_for() -> None:
    clock, wall = paced(60)
    wall.t += 10
    assert clock.wait_until(START + timedelta(minutes=5)) == START + timedelta(minutes=10)
    assert wall.slept == []


def test_a_sleep_that_ends_early_is_slept_again() -> None:
    wall = Wall()
    woken: list[float] = []

    def early(seconds: float) -> None:  # an interrupted sleep: half the time passes
        woken.append(seconds)
        wall.t += seconds / 2

    clock = PacedClock(START, 10, monotonic=wall.monotonic, sleep=early)
    clock.wait_until(START + timedelta(seconds=40))
    assert clock.now() >= START + timedelta(seconds=40)
    assert woken[:2] == [4.0, 2.0]


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_the_rate_is_a_positive_number(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        PacedClock(START, rate)


def test_the_start_is_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PacedClock(datetime(2026, 4, 4), 1440)
