"""Rates from running aggregates: what the report says follows from what the teams did."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.linkage import aggregates, keys
from firewatch.linkage.aggregates import (
    DURATION_EDGES,
    INDEX,
    LayoutError,
    bin_of,
    cover,
    percentile,
)
from firewatch.linkage.model import Resolution
from firewatch.linkage.service import Linkage

from .conftest import T0, event, oid

# Seconds from each incident's first detection to its order (detection to dispatch).
DETECTED_BEFORE = {1: 50, 2: 90, 3: 240, 4: 1500, 5: 120, 6: 600}


def _seen(clock: FakeClock, n: int) -> datetime:
    return clock.now() - timedelta(seconds=DETECTED_BEFORE[n])


def _season(linkage: Linkage, clock: FakeClock) -> None:
    """Day 1 (2026-04-04, +08:00): 4 warnings. Day 2: 2 warnings, one for another team."""
    linkage.consume([event(n=n, first_seen=_seen(clock, n)) for n in range(1, 5)])
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
    linkage.consume(
        [
            event(n=5, first_seen=_seen(clock, 5)),
            event(n=6, team="team-B", first_seen=_seen(clock, 6)),
        ]
    )
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


def test_durations_overall_and_per_team(linkage: Linkage, clock: FakeClock) -> None:
    """p50/p90 interpolated in their histogram bins (edges 30 s, 1, 2, 3, 5, 7.5, 10, 15, 20, 30,
    45 min, 1, 1.5, 2, 3 h ...): each figure below is worked out from the season by hand."""
    _season(linkage, clock)
    rows = {r.scope: r for r in linkage.report(by=["team"]).rows}
    a, team_a, team_b = rows["all"], rows["team:team-A"], rows["team:team-B"]
    # detection to dispatch: 50, 90, 240, 1500 s (day 1), 120, 600 s (day 2).
    # p50: the 3rd of 6 ends the 120-180 s bin: 180; p90: 5.4th, 0.4 into 1200-1800 s: 1440
    assert (a.to_dispatch_p50, a.to_dispatch_p90) == (180, 1440)
    assert (team_a.to_dispatch_p50, team_a.to_dispatch_p90) == (150, 1500)  # without the 600 s
    assert (team_b.to_dispatch_p50, team_b.to_dispatch_p90) == (750, 870)  # 600 s alone
    # acknowledged after 180, 420, 720 and 120 s
    assert (a.to_ack_p50, a.to_ack_p90) == (300, 780)
    assert (a.to_scene_p50, a.to_scene_p90) == (2250, 2610)  # one arrival, after 42 min
    assert (a.to_close_p50, a.to_close_p90) == (9000, 10440)  # two closes, after 2 h 42 min
    day1 = linkage.report(date(2026, 4, 4), date(2026, 4, 4), by=[]).rows[0]
    assert (day1.to_dispatch_p50, day1.to_dispatch_p90) == (120, 1560)  # 50, 90, 240, 1500 s


def test_the_rendered_and_json_reports_show_detection_to_dispatch(
    linkage: Linkage, clock: FakeClock
) -> None:
    _season(linkage, clock)
    report = linkage.report(by=["team"])
    lines = report.render().splitlines()
    head, overall = lines[1], lines[2]
    for column, value in [("detect-dispatch p50/p90", "3m/24m"), ("ack p50/p90", "5m/13m")]:
        end = head.index(column) + len(column)
        assert overall[end - len(value) : end] == value, column  # right-aligned under its head
    assert head.index("detect-dispatch") < head.index("ack p50/p90")
    cells = [" ".join(line.split()) for line in lines[2:]]
    assert cells[0] == "all 6 6 4 66.7% 1 2 33.3% 50.0% 2 3m/24m 5m/13m 38m/44m 2.5h/2.9h"
    assert cells[2] == "team:team-B 1 1 0 0.0% 0 0 0.0% - 0 12m/14m -/- -/- -/-"
    rows = json.loads(json.dumps(report.as_dict()))["rows"]  # as `firewatch report --json`
    assert {k: rows[0][k] for k in rows[0] if k.startswith("to_dispatch")} == {
        "to_dispatch_p50": 180.0,
        "to_dispatch_p90": 1440.0,
    }


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


def _bump_layout_1(client: redis.Redis, bucket: str, slot: int, metric: str, by: int = 1) -> None:
    """What the layout-1 code did: rows of 81 counters (no detection to dispatch)."""
    width = aggregates.ROWS[1]
    assert width == 81
    client.bitfield(keys.agg(bucket, 1)).incrby(
        "u32", f"#{slot * width + INDEX[metric]}", by
    ).execute()


def test_counts_of_the_first_layout_are_read_at_their_own_width(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, first_seen=T0 - timedelta(minutes=2))])  # counted in layout 2
    assert redis_client.smembers(keys.AGG_LAYOUTS) == {b"2"}
    slots = {k.decode(): int(v) for k, v in redis_client.hgetall(keys.AGG_SLOTS).items()}
    # before the upgrade, the layout-1 code had counted 3 warnings of team-A that day, 1 acked
    for bucket in ("all", "y2026", "m2026-04", "d2026-04-04"):
        for scope in ("all", "team:team-A"):
            _bump_layout_1(redis_client, bucket, slots[scope], "issued", 3)
            _bump_layout_1(redis_client, bucket, slots[scope], "acknowledged")
            _bump_layout_1(redis_client, bucket, slots[scope], f"to_ack:{bin_of(400)}")
    for report in (linkage.report(by=["team"]), linkage.report(T0.date(), T0.date(), by=["team"])):
        for row in report.rows[:2]:  # all, team:team-A (slot 1: misread at width 104, it is not)
            assert (row.scope, row.issued, row.acknowledged) == (row.scope, 4, 1)
            assert (row.to_ack_p50, row.to_ack_p90) == (375, 435)  # one ack in 300-450 s
            assert row.to_dispatch_p50 == 150  # only layout 2 has it: the one new order


def test_an_order_of_the_first_layout_counts_its_transitions_there(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1)])
    # make it an order the layout-1 code created: no agg_layout, its buckets in `buckets`
    old = ",".join(keys.agg(b, 1) for b in ("all", "y2026", "m2026-04", "d2026-04-04"))
    redis_client.hdel(keys.order(oid(1)), "agg_layout", "agg_buckets")
    redis_client.hset(keys.order(oid(1)), "buckets", old)
    before = redis_client.get(keys.agg("all", 2))
    linkage.ack(oid(1))
    assert redis_client.get(keys.agg("all", 2)) == before  # the layout-2 counters: untouched
    team = int(redis_client.hget(keys.AGG_SLOTS, "team:team-A") or -1)
    at = f"#{team * aggregates.ROWS[1] + INDEX['acknowledged']}"
    assert redis_client.bitfield(keys.agg("all", 1)).get("u32", at).execute() == [1]
    assert linkage.report(by=[]).rows[0].acknowledged == 1


def test_a_layout_this_firewatch_does_not_know_is_refused_naming_the_key(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1)])
    redis_client.sadd(keys.AGG_LAYOUTS, 3)  # a newer firewatch counted orders in layout 3
    with pytest.raises(LayoutError, match=r"fw:agg:layouts .* layout 3, which this firewatch"):
        linkage.report()
