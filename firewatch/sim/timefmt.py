"""RFC 3339 timestamps in a fixed UTC offset, fast for whole arrays of epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache

import numpy as np
from numpy.typing import NDArray

from firewatch.sim.columns import Column

DAY_S = 86_400
HOUR_S = 3600


@cache
def _in_hour(suffix: str) -> list[str]:
    """'MM:SS' and the UTC offset, of every second of an hour."""
    return [f"{s // 60:02d}:{s % 60:02d}{suffix}" for s in range(HOUR_S)]


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
        self._hours: dict[int, str] = {}  # 'YYYY-MM-DDTHH:' of local hours
        self._in_hour = _in_hour(self.suffix)

    def day(self, local_day: int) -> str:
        """'YYYY-MM-DDT' of a local day number (days since 1970-01-01 in this offset)."""
        text = self._days.get(local_day)
        if text is None:
            text = datetime.fromtimestamp(local_day * DAY_S, UTC).strftime("%Y-%m-%dT")
            self._days[local_day] = text
        return text

    def columns(self, t: NDArray[np.int64]) -> list[Column]:
        """The timestamps of many epoch seconds: 'YYYY-MM-DDTHH:' of the local hour, then
        'MM:SS+08:00' (see columns.join)."""
        hour, second = np.divmod(t + self.offset_s, HOUR_S)
        first = int(hour.min()) if hour.size else 0
        last = int(hour.max()) if hour.size else -1
        hours = [f"{self.day(h // 24)}{h % 24:02d}:" for h in range(first, last + 1)]
        return [Column(hours, hour - first), Column(_in_hour(self.suffix), second)]

    def iso(self, t: int) -> str:
        hour, second = divmod(t + self.offset_s, HOUR_S)
        text = self._hours.get(hour)
        if text is None:
            text = self._hours[hour] = f"{self.day(hour // 24)}{hour % 24:02d}:"
        return text + self._in_hour[second]

    def at(self, t: int) -> datetime:
        return datetime.fromtimestamp(t, self.tz)

    def local_hour(self, t: NDArray[np.int64]) -> NDArray[np.float64]:
        return ((t + self.offset_s) % DAY_S) / 3600.0
