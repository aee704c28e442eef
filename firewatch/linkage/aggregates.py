"""Running aggregates for the report: packed counters, so a report never scans orders.

Every order belongs to scopes: `all`, `team:<t>`, `township:<t>`, `district:<d>`. Each scope has a
slot number (fw:agg:slots). A bucket key (keys.agg(bucket, layout)) is a Redis string holding, for
every slot, one row of the layout's metrics as unsigned 32-bit big-endian counters, incremented
atomically with BITFIELD ... OVERFLOW SAT INCRBY u32 #<slot * row + metric> 1 by the order scripts.

An order counts in the buckets of its creation time (a cohort): the day, month and year in the
report's UTC offset, and `all`. Its acknowledgement three days later still counts in the day it was
issued, so "response rate for April" means: of the warnings issued in April, how many got a
response. A range of days is read as the fewest whole years, months and days that cover it.

Durations (detection to dispatch, time to acknowledge, to reach the scene, to close) are counted in
histogram bins whose edges are DURATION_EDGES; p50 and p90 are interpolated inside a bin (exact to
the bin's width).

Layouts. The row (which metric is at which offset) is versioned: LAYOUTS[n] lists the metrics of
layout n, and a layout only ever appends to the one before, so a metric has the same offset in
every layout that has it and only the row width differs. Each layout has its own bucket keys
(fw:agg:<bucket> for layout 1, the first; fw:agg:v<n>:<bucket> for later ones), so rows of two
widths never share a string. An order records the layout it was created with (`agg_layout`,
absent = 1) and its later transitions bump that layout's keys with that layout's row width. The
report reads every known layout's keys, each cut at its own width, and refuses (LayoutError,
naming fw:agg:layouts) when a newer firewatch has counted orders in a layout this one does not
know. Adding a metric: append it in a new LAYOUTS entry; never change an existing one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np

from firewatch.errors import FirewatchError

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
DURATIONS: tuple[str, ...] = ("to_dispatch", "to_ack", "to_scene", "to_close")


def _metrics(durations: tuple[str, ...]) -> tuple[str, ...]:
    return COUNTERS + tuple(f"{d}:{i}" for d in durations for i in range(BINS))


LAYOUTS: dict[int, tuple[str, ...]] = {
    1: _metrics(("to_ack", "to_scene", "to_close")),
    2: _metrics(("to_ack", "to_scene", "to_close", "to_dispatch")),  # + detection to dispatch
}
LAYOUT = max(LAYOUTS)  # the layout new orders are counted in
METRICS = LAYOUTS[LAYOUT]
ROW = len(METRICS)
ROWS = {n: len(m) for n, m in LAYOUTS.items()}  # row width of each layout
INDEX = {name: i for i, name in enumerate(METRICS)}
assert all(LAYOUTS[n] == METRICS[: ROWS[n]] for n in LAYOUTS), "layouts may only append metrics"
assert set(DURATIONS) == {m.partition(":")[0] for m in METRICS if ":" in m}


class LayoutError(FirewatchError):
    """Aggregates written in a layout this firewatch cannot read (names the key)."""


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


def unpack(blobs: list[bytes | None], slots: int, layout: int = LAYOUT) -> np.ndarray:
    """Sum packed buckets of `layout` into a (slots, ROW) uint64 array of the current layout.

    Each blob is cut into rows of its own layout's width; the metrics it does not have are 0."""
    width = ROWS[layout]
    total = np.zeros((slots, ROW), dtype=np.uint64)
    for blob in blobs:
        if not blob:
            continue
        n = len(blob) // 4
        row = np.frombuffer(blob, dtype=">u4", count=n)
        full = min(n, slots * width)
        padded = np.zeros(slots * width, dtype=np.uint64)
        padded[:full] = row[:full]
        total[:, :width] += padded.reshape(slots, width)
    return total


def percentile(hist: np.ndarray, q: float) -> float | None:
    """The q-quantile (0..1) of a duration histogram, interpolated in its bin, to the millisecond;
    None when empty."""
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
    return round(float(lo + (hi - lo) * frac), 3)
