"""Response and closure rates from the running aggregates: a handful of reads, never a scan.

Every known aggregate layout is read (aggregates.py, "Layouts"), so orders counted before an
upgrade that added a metric still count, in the metrics their layout has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import redis

from firewatch.linkage import aggregates, keys
from firewatch.linkage.uptime import HealthRow

SCOPE_KINDS = ("team", "township", "district")


@dataclass(frozen=True)
class Row:
    scope: str  # `all`, `team:<t>`, `township:<t>`, `district:<d>`
    issued: int
    dispatched: int
    acknowledged: int
    on_scene: int
    closed: int
    false_alarm: int
    escalations: int
    escalated: int
    response_rate: float | None  # acknowledged / issued
    closure_rate: float | None  # closed / issued
    false_alarm_rate: float | None  # false alarms / closed
    to_dispatch_p50: float | None  # seconds from the incident's first detection to the order
    to_dispatch_p90: float | None
    to_ack_p50: float | None  # seconds from the order to its acknowledgement
    to_ack_p90: float | None
    to_scene_p50: float | None
    to_scene_p90: float | None
    to_close_p50: float | None
    to_close_p90: float | None


@dataclass(frozen=True)
class Report:
    first: date | None
    last: date | None
    rows: list[Row]
    # device uptime and blind-cell hours (linkage/maintenance.py), overall and by township and
    # district: maintenance, never counted in the rows' fire warnings
    devices: list[HealthRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "rows": [asdict(r) for r in self.rows],
            "devices": [asdict(r) for r in self.devices],
        }

    def render(self) -> str:
        span = f"{self.first} to {self.last}" if self.first and self.last else "all time"
        head = (
            f"{'scope':<28} {'warnings':>8} {'dispatched':>10} {'acked':>6} {'response':>8} "
            f"{'on scene':>8} {'closed':>6} {'closure':>7} {'false al.':>9} {'escal.':>6} "
            f"{'detect-dispatch p50/p90':>23} {'ack p50/p90':>13} {'scene p50/p90':>15} "
            f"{'close p50/p90':>15}"
        )
        lines = [f"dispatch report, {span} (warnings counted on the day they were issued)", head]
        for r in self.rows:
            lines.append(
                f"{r.scope[:28]:<28} {r.issued:>8,} {r.dispatched:>10,} {r.acknowledged:>6,} "
                f"{_pct(r.response_rate):>8} {r.on_scene:>8,} {r.closed:>6,} "
                f"{_pct(r.closure_rate):>7} {_pct(r.false_alarm_rate):>9} {r.escalations:>6,} "
                f"{_pair(r.to_dispatch_p50, r.to_dispatch_p90):>23} "
                f"{_pair(r.to_ack_p50, r.to_ack_p90):>13} "
                f"{_pair(r.to_scene_p50, r.to_scene_p90):>15} "
                f"{_pair(r.to_close_p50, r.to_close_p90):>15}"
            )
        if self.devices:
            lines += ["", "device health (maintenance orders, not fire warnings)"]
            lines.append(
                f"{'scope':<28} {'devices':>8} {'outages':>8} {'down h':>9} {'uptime':>8} "
                f"{'blind cells':>11} {'blind cell h':>12}"
            )
            for h in self.devices:
                lines.append(
                    f"{h.scope[:28]:<28} {h.devices:>8,} {h.outages:>8,} {h.down_hours:>9,.1f} "
                    f"{_pct(h.uptime):>8} {h.blind:>11,} {h.blind_cell_hours:>12,.1f}"
                )
        return "\n".join(lines)


def build_report(
    client: redis.Redis,
    first: date | None = None,
    last: date | None = None,
    by: Sequence[str] = ("township", "district"),
) -> Report:
    """Rates overall and per scope kind in `by`, for warnings issued in [first, last] (or ever).

    Raises aggregates.LayoutError when orders were counted in a layout this firewatch does not
    know (a newer firewatch wrote them): their counts would be missing from the report."""
    unknown = set(by) - set(SCOPE_KINDS)
    if unknown:
        raise ValueError(f"report by {sorted(unknown)}: choose from {', '.join(SCOPE_KINDS)}")
    if (first is None) != (last is None):
        raise ValueError("a report range needs both a first and a last day")
    buckets = ["all"] if first is None or last is None else aggregates.cover(first, last)
    slots, totals = read_totals(client, buckets)
    wanted = ["all", *sorted(s for s in slots if s.split(":", 1)[0] in by)]
    rows = [
        _row(scope, totals[slots[scope]]) if scope in slots else _row(scope, None)
        for scope in wanted
    ]
    return Report(first, last, rows)


def read_totals(client: redis.Redis, buckets: Sequence[str]) -> tuple[dict[str, int], np.ndarray]:
    """The aggregates of `buckets` summed, every known layout read at its own width: (scope ->
    slot, a (slots, aggregates.ROW) array of the current layout's metrics per slot). The report
    and the metrics (firewatch/metrics/linkage.py) read them here.

    Raises aggregates.LayoutError when orders were counted in a layout this firewatch does not
    know."""
    r: Any = client  # redis-py's return types are unions of its sync and async clients
    _check_layouts(r)
    slots = {k.decode(): int(v) for k, v in r.hgetall(keys.AGG_SLOTS).items()}
    layouts = sorted(aggregates.LAYOUTS)
    names = [keys.agg(b, layout) for layout in layouts for b in buckets]
    blobs = list(r.mget(names)) if names else []
    size, n = max(slots.values(), default=-1) + 1, len(buckets)
    totals = np.zeros((size, aggregates.ROW), dtype=np.uint64)
    for i, layout in enumerate(layouts):
        totals += aggregates.unpack(blobs[i * n : (i + 1) * n], size, layout)
    return slots, totals


def durations(row: np.ndarray, kind: str) -> np.ndarray:
    """A row's histogram of one duration (aggregates.DURATIONS): counts per bin."""
    start = aggregates.INDEX[f"{kind}:0"]
    return row[start : start + aggregates.BINS]


def _check_layouts(r: Any) -> None:
    written = sorted(int(n) for n in r.smembers(keys.AGG_LAYOUTS))
    unknown = [n for n in written if n not in aggregates.LAYOUTS]
    if unknown:
        raise aggregates.LayoutError(
            f"{keys.AGG_LAYOUTS} says orders were counted in aggregate layout "
            f"{', '.join(map(str, unknown))}, which this firewatch does not know (it reads "
            f"{', '.join(map(str, sorted(aggregates.LAYOUTS)))}): the report would leave them "
            "out; run the firewatch version that wrote them"
        )


def _row(scope: str, v: np.ndarray | None) -> Row:
    if v is None:
        v = np.zeros(aggregates.ROW, dtype=np.uint64)
    c = {name: int(v[aggregates.INDEX[name]]) for name in aggregates.COUNTERS}

    def hist(kind: str) -> np.ndarray:
        return durations(v, kind)

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    return Row(
        scope=scope,
        issued=c["issued"],
        dispatched=c["dispatched"],
        acknowledged=c["acknowledged"],
        on_scene=c["on_scene"],
        closed=c["closed"],
        false_alarm=c["false_alarm"],
        escalations=c["escalations"],
        escalated=c["escalated"],
        response_rate=ratio(c["acknowledged"], c["issued"]),
        closure_rate=ratio(c["closed"], c["issued"]),
        false_alarm_rate=ratio(c["false_alarm"], c["closed"]),
        to_dispatch_p50=aggregates.percentile(hist("to_dispatch"), 0.5),
        to_dispatch_p90=aggregates.percentile(hist("to_dispatch"), 0.9),
        to_ack_p50=aggregates.percentile(hist("to_ack"), 0.5),
        to_ack_p90=aggregates.percentile(hist("to_ack"), 0.9),
        to_scene_p50=aggregates.percentile(hist("to_scene"), 0.5),
        to_scene_p90=aggregates.percentile(hist("to_scene"), 0.9),
        to_close_p50=aggregates.percentile(hist("to_close"), 0.5),
        to_close_p90=aggregates.percentile(hist("to_close"), 0.9),
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 3600:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def _pair(a: float | None, b: float | None) -> str:
    return f"{_dur(a)}/{_dur(b)}"
