"""Time is passed in: the engine works in event time, wall-clock needs go through a Clock."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` or by timedelta keyword arguments (minutes=11)."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += step
        return self._now

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = when


class PacedClock:
    """Simulated time that runs `rate` times as fast as the wall clock, from `start`.

    now() = start + rate x (monotonic seconds since the clock was made). `wait_until` sleeps the
    wall-clock equivalent of the simulated time left. For the demo that plays a season while the
    API serves it; the API reads `rate` (simulated seconds per wall second).
    """

    def __init__(
        self,
        start: datetime,
        rate: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("PacedClock needs a timezone-aware start time")
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(
                f"PacedClock needs a rate above 0 (simulated s per wall s), not {rate}"
            )
        self.start = start
        self.rate = rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._t0 = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.rate * (self._monotonic() - self._t0))

    def wait_until(self, when: datetime) -> datetime:
        """Sleep until simulated time reaches `when` (at once if it has); returns now()."""
        while (now := self.now()) < when:
            self._sleep((when - now).total_seconds() / self.rate)
        return now
