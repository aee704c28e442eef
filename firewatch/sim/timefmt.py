"""RFC 3339 timestamps in a fixed UTC offset, fast for whole arrays of epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache

import numpy as np
from numpy.typing import NDArray

DAY_S = 86_400


@cache
def _times_of_day() -> list[str]:
    return [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY_S)]


class Stamps:
    """Formats epoch seconds as local time in the UTC offset of `like` ("...T10:20:00+08:00")."""

    def __init__(self, like: datetime) -> None:
        offset = like.utcoffset()
        if offset is None:
            raise ValueError("the simulation start must be timezone-aware")
        self.offset_s = int(offset.total_seconds())
        self.tz = timezone(timedelta(seconds=self.offset_s))
        sign = "-" if self.offset_s < 0 else "+"
        minutes = abs(self.offset_s) // 60
        self.suffix = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        self._days: dict[int, str] = {}

    def day(self, local_day: int) -> str:
        """'YYYY-MM-DDT' of a local day number (days since 1970-01-01 in this offset)."""
        text = self._days.get(local_day)
        if text is None:
            text = datetime.fromtimestamp(local_day * DAY_S, UTC).strftime("%Y-%m-%dT")
            self._days[local_day] = text
        return text

    def split(self, t: NDArray[np.int64]) -> tuple[list[str], list[str]]:
        """Day prefixes and times of day ('HH:MM:SS') of many epoch seconds."""
        local = t + self.offset_s
        tod = _times_of_day()
        days = [self.day(d) for d in (local // DAY_S).tolist()]
        return days, [tod[s] for s in (local % DAY_S).tolist()]

    def iso(self, t: int) -> str:
        local = t + self.offset_s
        return f"{self.day(local // DAY_S)}{_times_of_day()[local % DAY_S]}{self.suffix}"

    def at(self, t: int) -> datetime:
        return datetime.fromtimestamp(t, self.tz)

    def local_hour(self, t: NDArray[np.int64]) -> NDArray[np.float64]:
        return ((t + self.offset_s) % DAY_S) / 3600.0
