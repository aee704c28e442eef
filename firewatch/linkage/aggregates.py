"""Running aggregates for the report: packed counters, so a report never scans orders.

Every order belongs to scopes: `all`, `team:<t>`, `township:<t>`, `district:<d>`. Each scope has a
slot number (fw:agg:slots). A bucket key (fw:agg:<bucket>) is a Redis string holding, for every
slot, one row of len(METRICS) unsigned 32-bit big-endian counters, incremented atomically with
BITFIELD ... OVERFLOW SAT INCRBY u32 #<slot * ROW + metric> 1 by the order scripts.

An order counts in the buckets of its creation time (a cohort): the day, month and year in the
report's UTC offset, and `all`. Its acknowledgement three days later still counts in the day it was
issued, so "response rate for April" means: of the warnings issued in April, how many got a
response. A range of days is read as the fewest whole years, months and days that cover it.

Durations (time to acknowledge, to reach the scene, to close) are counted in histogram bins whose
edges are DURATION_EDGES; p50 and p90 are interpolated inside a bin (exact to the bin's width).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np

COUNTERS: tuple[str, ...] = (
    "issued",  # warnings: incidents opened
    "dispatched",  # an order reached a responder
    "acknowledged",
    "on_scene",
    "closed",
    "extinguished",
    "false_alarm",
    "controlled_burn",
    "other",
    "escalations",  # escalation steps
    "escalated",  # orders escalated at least once
    "renotified",  # severity rises that re-notified
)
# Seconds: 0, 30 s, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45 min, 1, 1.5, 2, 3, 4, 6, 8, 12 h, 1, 2, 7 d
DURATION_EDGES: tuple[float, ...] = (
    0, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700,
    3600, 5400, 7200, 10800, 14400, 21600, 28800, 43200, 86400, 172800, 604800,
)  # fmt: skip
BINS = len(DURATION_EDGES)  # the last bin is "at or above the last edge"
DURATIONS: tuple[str, ...] = ("to_ack", "to_scene", "to_close")
METRICS: tuple[str, ...] = COUNTERS + tuple(f"{d}:{i}" for d in DURATIONS for i in range(BINS))
ROW = len(METRICS)
INDEX = {name: i for i, name in enumerate(METRICS)}


def bin_of(seconds: float) -> int:
    """Histogram bin of a duration: the last edge at or below it."""
    return max(int(np.searchsorted(DURATION_EDGES, max(seconds, 0.0), side="right")) - 1, 0)


def duration_index(kind: str, seconds: float) -> int:
    return INDEX[f"{kind}:{bin_of(seconds)}"]


def buckets(at: datetime, utc_offset: timedelta) -> list[str]:
    """The bucket names an order created at `at` counts in."""
    local = at.astimezone(timezone(utc_offset))
    return ["all", f"y{local:%Y}", f"m{local:%Y-%m}", f"d{local:%Y-%m-%d}"]


def cover(first: date, last: date) -> list[str]:
    """The fewest whole-year, whole-month and day buckets whose union is [first, last]."""
    out: list[str] = []
    day = first
    while day <= last:
        year_end = date(day.year, 12, 31)
        if day == date(day.year, 1, 1) and year_end <= last:
            out.append(f"y{day:%Y}")
            day = year_end + timedelta(days=1)
            continue
        month_end = (date(day.year + day.month // 12, day.month % 12 + 1, 1)) - timedelta(days=1)
        if day.day == 1 and month_end <= last:
            out.append(f"m{day:%Y-%m}")
            day = month_end + timedelta(days=1)
            continue
        out.append(f"d{day:%Y-%m-%d}")
        day += timedelta(days=1)
    return out


def unpack(blobs: list[bytes | None], slots: int) -> np.ndarray:
    """Sum packed buckets into a (slots, ROW) uint64 array."""
    total = np.zeros((slots, ROW), dtype=np.uint64)
    for blob in blobs:
        if not blob:
            continue
        n = len(blob) // 4
        row = np.frombuffer(blob, dtype=">u4", count=n)
        full = min(n, slots * ROW)
        padded = np.zeros(slots * ROW, dtype=np.uint64)
        padded[:full] = row[:full]
        total += padded.reshape(slots, ROW)
    return total


def percentile(hist: np.ndarray, q: float) -> float | None:
    """The q-quantile (0..1) of a duration histogram, interpolated in its bin; None when empty."""
    n = float(hist.sum())
    if n == 0:
        return None
    target = q * n
    cum = np.cumsum(hist, dtype=np.float64)
    b = int(np.searchsorted(cum, target, side="left"))
    lo = DURATION_EDGES[b]
    hi = DURATION_EDGES[b + 1] if b + 1 < BINS else lo * 2
    before = cum[b - 1] if b else 0.0
    inside = float(hist[b])
    frac = (target - before) / inside if inside else 0.0
    return lo + (hi - lo) * frac
