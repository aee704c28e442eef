"""Rates from running aggregates: what the report says follows from what the teams did."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from firewatch.clock import FakeClock
from firewatch.linkage.aggregates import DURATION_EDGES, bin_of, cover, percentile
from firewatch.linkage.model import Resolution
from firewatch.linkage.service import Linkage

from .conftest import event, oid


def _season(linkage: Linkage, clock: FakeClock) -> None:
    """Day 1 (2026-04-04, +08:00): 4 warnings. Day 2: 2 warnings, one for another team."""
    linkage.consume([event(n=n) for n in range(1, 5)])
    clock.advance(minutes=3)
    linkage.ack(oid(1))
    clock.advance(minutes=4)  # 7 min
    linkage.ack(oid(2))
    clock.advance(minutes=5)  # 12 min: orders 3 and 4 escalate
    linkage.escalate()
    linkage.ack(oid(3))
    clock.advance(minutes=30)
    linkage.arrive(oid(1))
    clock.advance(hours=2)
    linkage.close(oid(1), Resolution.EXTINGUISHED)
    linkage.close(oid(2), Resolution.FALSE_ALARM)
    clock.advance(days=1)
    linkage.consume([event(n=5), event(n=6, team="team-B")])
    clock.advance(minutes=2)
    linkage.ack(oid(5))


def test_rates_overall_and_per_team(linkage: Linkage, clock: FakeClock) -> None:
    _season(linkage, clock)
    report = linkage.report(by=["team", "township"])
    rows = {r.scope: r for r in report.rows}
    assert list(rows) == ["all", "team:team-A", "team:team-B", "township:T1"]
    a = rows["all"]
    assert (a.issued, a.dispatched, a.acknowledged, a.on_scene, a.closed) == (6, 6, 4, 1, 2)
    assert (a.false_alarm, a.escalations, a.escalated) == (1, 2, 2)
    assert a.response_rate == pytest.approx(4 / 6)
    assert a.closure_rate == pytest.approx(2 / 6)
    assert a.false_alarm_rate == pytest.approx(1 / 2)
    assert rows["team:team-B"].issued == 1 and rows["team:team-B"].acknowledged == 0
    assert rows["team:team-A"].issued == 5 and rows["township:T1"].issued == 6
    # acks after 3, 7, 12 and 2 min: p50 lies between 3 and 7 min, p90 in the 10-15 min bin
    assert a.to_ack_p50 is not None and 120 <= a.to_ack_p50 <= 450
    assert a.to_ack_p90 is not None and 600 <= a.to_ack_p90 <= 900


def test_a_range_counts_warnings_by_the_day_they_were_issued(
    linkage: Linkage, clock: FakeClock
) -> None:
    _season(linkage, clock)
    day1, day2 = date(2026, 4, 4), date(2026, 4, 5)
    first = linkage.report(day1, day1, by=[]).rows[0]
    second = linkage.report(day2, day2, by=[]).rows[0]
    both = linkage.report(day1, day2, by=[]).rows[0]
    assert (first.issued, first.acknowledged, first.closed) == (4, 3, 2)
    assert (second.issued, second.acknowledged) == (2, 1)
    assert both.issued == 6 and both.acknowledged == 4
    assert linkage.report(date(2026, 4, 1), date(2026, 4, 3), by=[]).rows[0].issued == 0
    assert linkage.report(date(2026, 1, 1), date(2026, 12, 31), by=[]).rows[0].issued == 6


def test_report_arguments_are_checked(linkage: Linkage) -> None:
    with pytest.raises(ValueError, match="village"):
        linkage.report(by=["village"])
    with pytest.raises(ValueError, match="both"):
        linkage.report(date(2026, 1, 1), None)


def test_cover_uses_whole_years_and_months() -> None:
    days = cover(date(2025, 12, 30), date(2027, 2, 2))
    assert days == ["d2025-12-30", "d2025-12-31", "y2026", "m2027-01", "d2027-02-01", "d2027-02-02"]
    span = [date(2025, 12, 30) + timedelta(days=i) for i in range(400)]
    assert cover(span[0], span[-1])[0] == "d2025-12-30"


def test_percentile_interpolates_inside_a_bin() -> None:
    hist = np.zeros(len(DURATION_EDGES))
    hist[bin_of(400)] = 10  # ten acks between 300 and 450 s
    assert percentile(hist, 0.5) == pytest.approx(375)
    assert percentile(np.zeros(len(DURATION_EDGES)), 0.5) is None
