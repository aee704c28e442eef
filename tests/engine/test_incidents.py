"""Clustering in event time: merging, widening, inactivity, updates, ids, order, duplicates."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.engine.incidents import incident_id
from firewatch.model import EventKind, Outcome, Severity
from firewatch.rules import RuleSet

from .conftest import T0, camera, fire, kinds, run, satellite, sensor

DAY = 24 * 60


def test_detection_within_radius_joins_and_beyond_opens_another(
    make_engine: Callable[..., Engine],
) -> None:
    events = run(
        make_engine(),
        [camera("a", 0, 0.9), camera("b", 5, 0.9, east_km=1.9), camera("c", 6, 0.9, east_km=-2.1)],
    )
    opened = [e for e in events if e.event is EventKind.OPENED]
    assert len(opened) == 2
    assert {e.incident_id for e in opened} == {incident_id("a@0"), incident_id("c@6")}


def test_satellite_pixel_widens_the_merge_radius(make_engine: Callable[..., Engine]) -> None:
    # 2.6 km from the first detection: beyond 2 km, within 2 + 0.5 * (scan 1.5 km + 0) for a pixel
    near = run(make_engine(), [camera("a", 0, 0.9), satellite(5, 0.9, scan=1.5, east_km=2.6)])
    assert [e.event for e in near].count(EventKind.OPENED) == 1
    far = run(make_engine(), [camera("a", 0, 0.9), satellite(5, 0.9, scan=1.0, east_km=2.6)])
    assert [e.event for e in far].count(EventKind.OPENED) == 2


def test_inactivity_closes_and_a_later_detection_opens_a_new_incident(
    make_engine: Callable[..., Engine],
) -> None:
    events = run(
        make_engine(), [camera("a", 0, 0.9), camera("a", 60, 0.9), camera("a", 60 + DAY + 1, 0.9)]
    )
    assert [e.event for e in events] == [EventKind.OPENED, EventKind.CLOSED, EventKind.OPENED]
    closed = events[1]
    assert closed.observed_at == T0 + timedelta(minutes=60 + DAY)  # last detection + 24 h
    assert closed.detections == 2
    assert closed.last_seen == T0 + timedelta(minutes=60)
    assert events[2].incident_id != events[0].incident_id


def test_detection_exactly_at_the_deadline_still_joins(make_engine: Callable[..., Engine]) -> None:
    events = run(make_engine(), [camera("a", 0, 0.9), camera("a", DAY, 0.9)])
    assert [e.event for e in events] == [EventKind.OPENED]


def test_updated_only_when_severity_rises_or_a_new_source_joins(
    make_engine: Callable[..., Engine],
) -> None:
    records = [camera("a", m, 0.9) for m in range(0, 40, 2)]  # 20 smoke reports from one camera
    records.append(sensor("s1", 41, north_km=0.3))  # a new source type
    records.append(sensor("s1", 42, north_km=0.3))  # the same again: no event
    events = run(make_engine(), records)
    # points in a low-risk cell: one source 0, >= 5 detections 1, >= 20 detections 2 (moderate);
    # the sensor adds a second source type: +2 -> 4 (high)
    assert [(e.event, e.severity, e.detections) for e in events] == [
        (EventKind.OPENED, Severity.LOW, 1),
        (EventKind.UPDATED, Severity.MODERATE, 20),
        (EventKind.UPDATED, Severity.HIGH, 21),
    ]
    assert events[-1].sources == {"sensor": 1, "camera": 20, "satellite": 0}


def test_severity_rises_with_sources_frp_and_risk(make_engine: Callable[..., Engine]) -> None:
    low = run(make_engine(), [camera("a", 0, 0.9)])[0]
    assert low.severity is Severity.LOW
    high_risk = run(make_engine(), [camera("a", 0, 0.9, north_km=2.0)])[0]  # risk high: 2 points
    assert high_risk.severity is Severity.MODERATE
    events = run(
        make_engine(),
        [
            camera("a", 0, 0.9, label="flame", north_km=2.0),  # flame 1 + high risk 2: moderate
            sensor("s", 1, north_km=2.2),  # 2 sources: +2 -> 5: high
            satellite(2, 0.9, frp=250, north_km=2.1),  # 3 sources (3) + frp (2) -> 8: critical
        ],
    )
    assert [(e.event, e.severity) for e in events] == [
        (EventKind.OPENED, Severity.MODERATE),
        (EventKind.UPDATED, Severity.HIGH),
        (EventKind.UPDATED, Severity.CRITICAL),
    ]


def test_corroborated_incident_is_anchored_on_its_first_detection(
    make_engine: Callable[..., Engine],
) -> None:
    events = run(make_engine(), [sensor("s1", 0), camera("cam", 20, 0.6, east_km=1.0)])
    (opened,) = events
    assert opened.incident_id == incident_id("s1@0")
    assert opened.rule == "camera.corroborated"
    assert opened.evidence == ["s1@0", "cam@20"]
    assert opened.first_seen == T0 and opened.observed_at == T0 + timedelta(minutes=20)
    assert opened.grid_id == "c4-5"  # the cell of the sensor at the grid's centre


def _dump(events: list[Any]) -> list[str]:
    return [e.model_dump_json() for e in events]


def _minutes(record: dict[str, Any]) -> float:
    return (datetime.fromisoformat(record["observed_at"]) - T0).total_seconds() / 60


def shuffled_within(
    records: list[dict[str, Any]], minutes: float, rng: random.Random
) -> list[dict[str, Any]]:
    """Records in an arrival order where each is held back by a random delay of up to `minutes`
    of event time: a record can arrive after records up to `minutes` later than it, never more."""
    return sorted(records, key=lambda r: _minutes(r) + rng.uniform(0, minutes))


def lateness(records: list[dict[str, Any]]) -> tuple[float, int]:
    """In this arrival order: the most a record is behind the latest one before it (minutes),
    and how many records arrive after a later one."""
    newest, most, behind = -math.inf, 0.0, 0
    for r in records:
        t = _minutes(r)
        if t < newest:
            most, behind = max(most, newest - t), behind + 1
        newest = max(newest, t)
    return most, behind


def test_out_of_order_within_grace_gives_the_same_events(
    make_engine: Callable[..., Engine], rules: RuleSet
) -> None:
    records = fire(1)
    expected = _dump(run(make_engine(), sorted(records, key=_minutes)))
    grace = rules.incidents.grace.total_seconds() / 60
    shuffled = shuffled_within(records, 0.9 * grace, random.Random(7))
    most, behind = lateness(shuffled)
    assert 0.5 * grace < most < grace  # really out of order, and within the grace period
    assert behind > len(records) // 4
    for batch in (1, 7, 1000):
        assert _dump(run(make_engine(), shuffled, batch=batch)) == expected
    assert len(expected) >= 3
    # the same arrival order without a grace buffer does not give the same events
    no_grace = rules.model_copy(
        update={"incidents": rules.incidents.model_copy(update={"grace": timedelta(0)})}
    )
    for batch in (1, 7):
        assert _dump(run(make_engine(no_grace), shuffled, batch=batch)) != expected


def test_duplicates_change_nothing(make_engine: Callable[..., Engine]) -> None:
    records = fire(2)
    expected = _dump(run(make_engine(), records))
    engine = make_engine()
    doubled = [r for r in records for _ in (0, 1)]
    assert _dump(run(engine, doubled)) == expected
    assert engine.stats.outcomes[Outcome.DUPLICATE] > 0


def test_a_copy_within_the_dedup_window_is_dropped_and_a_later_one_counts_again(
    make_engine: Callable[..., Engine],
) -> None:
    # rules/incidents.yaml: dedup_window 2 h (+ the 10 min grace); a fire seen every 10 minutes
    engine = make_engine()
    first = camera("cam", 0, 0.9)
    run(engine, [first, *(camera("cam", m, 0.9) for m in range(10, 101, 10)), first])
    assert engine.stats.outcomes[Outcome.DUPLICATE] == 1  # 100 min later: still remembered
    run(engine, [camera("cam", m, 0.9) for m in range(110, 201, 10)])  # the watermark: 190 min
    # the ids of signals more than 2 h 10 min older than the watermark (200 min) are forgotten
    remembered = {i for _, i in orjson.loads(engine.snapshot())["seen"]}
    assert remembered == {f"cam@{m}" for m in range(70, 201, 10)}
    counted = engine.stats.outcomes[Outcome.INCIDENT]
    run(engine, [first])  # 3 h 10 min after it: a late record, not a duplicate any more
    assert engine.stats.outcomes[Outcome.DUPLICATE] == 1
    assert engine.stats.outcomes[Outcome.INCIDENT] == counted + 1


def test_records_later_than_grace_are_processed_late_and_stale_ones_dropped(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    events = run(
        engine,
        [
            camera("a", 0, 0.9),
            sensor("noise", 60, temp=20, east_km=5),  # moves the watermark to 50 min
            camera("b", 30, 0.9, east_km=1),  # 20 min late: beyond grace, still joins
            sensor("noise", 3 * DAY, temp=20, east_km=5),  # watermark: 3 days on
            camera("c", 40, 0.9, north_km=4),  # older than watermark - 24 h: stale
        ],
        batch=1,
    )
    assert engine.stats.late == 1
    assert engine.stats.outcomes[Outcome.STALE] == 1
    opened = [e for e in events if e.event is EventKind.OPENED]
    assert len(opened) == 1 and [e.event for e in events].count(EventKind.CLOSED) == 1
    closed = next(e for e in events if e.event is EventKind.CLOSED)
    assert closed.detections == 2


def test_an_injected_clock_closes_incidents_on_a_quiet_stream(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    assert [e.event for e in run(engine, [camera("a", 0, 0.9)])] == [EventKind.OPENED]
    clock = FakeClock(T0)
    clock.advance(hours=24)
    assert engine.advance(clock.now()) == []  # deadline not yet passed by now - grace
    clock.advance(minutes=11)
    (closed,) = engine.advance(clock.now())
    assert closed.event is EventKind.CLOSED and closed.observed_at == T0 + timedelta(hours=24)


def test_event_ids_are_deterministic_and_sequential(make_engine: Callable[..., Engine]) -> None:
    records = fire(3)
    a, b = run(make_engine(), records), run(make_engine(), records)
    assert [e.event_id for e in a] == [e.event_id for e in b]
    per_incident: dict[str, list[str]] = {}
    for e in a:
        per_incident.setdefault(e.incident_id, []).append(e.event_id)
    for iid, ids in per_incident.items():
        assert ids == [f"{iid}/{n}" for n in range(len(ids))]


def test_outside_detections_open_nothing_unless_a_buffer_is_set(
    make_engine: Callable[..., Engine], rules: RuleSet
) -> None:
    just_outside = camera("a", 0, 0.9, north_km=-5.1)  # about 0.1 km south of the grid's edge
    engine = make_engine()
    assert run(engine, [just_outside]) == []
    assert engine.stats.outcomes[Outcome.OUTSIDE] == 1
    buffered = rules.model_copy(
        update={"incidents": rules.incidents.model_copy(update={"outside_buffer_m": 500})}
    )
    events = run(make_engine(buffered), [just_outside])
    assert kinds(events) == [("opened", "camera.confident")]
    assert events[0].grid_id == "c0-5"


def test_held_batches_wait_for_the_slowest_source(make_engine: Callable[..., Engine]) -> None:
    """Two sources interleaved in chunks far apart in event time: with `hold` and the slowest
    source's progress as the watermark, nothing is late and the events equal sorted input."""
    records = sorted(fire(5), key=_minutes)
    expected = _dump(run(make_engine(), records))
    a, b = records[::2], records[1::2]  # two sources, each in event-time order
    engine = make_engine()
    events: list[Any] = []
    progress = {"a": -1.0, "b": -1.0}
    chunks = [("a", a[i : i + 40]) for i in range(0, len(a), 40)]
    chunks += [("b", b[i : i + 40]) for i in range(0, len(b), 40)]
    chunks.sort(key=lambda c: (c[0] == "b", c[1][0]["observed_at"]))  # all of a, then all of b
    from firewatch.model import DETECTIONS

    for name, chunk in chunks:
        events += engine.process(DETECTIONS.validate_python(chunk), hold=True)
        progress[name] = _minutes(chunk[-1])
        events += engine.advance(T0 + timedelta(minutes=min(progress.values())))
    events += engine.flush()
    assert engine.stats.late == 0
    assert _dump(events) == expected
    unheld = make_engine()
    run(unheld, [r for _, chunk in chunks for r in chunk], batch=40)
    assert unheld.stats.late > 0  # without hold, the same interleaving makes records late


def test_the_deadline_heap_holds_one_entry_per_open_incident(
    make_engine: Callable[..., Engine],
) -> None:
    # a fire seen every minute for 5 hours: its deadline moves on 300 times, the heap does not
    # grow with it (it held one entry per joining detection before 2026-12-03)
    engine = make_engine()
    run(engine, [camera("cam", m, 0.9) for m in range(300)] + [camera("c2", 200, 0.9, east_km=4)])
    assert len(engine.tracker.open) == 2
    assert len(engine.tracker._deadlines) <= 2 + 1  # one each, and at most one moved on
    # and the incidents still close at their current deadlines
    events = run(engine, [camera("far", 299 + DAY + 1, 0.9, north_km=-4)])
    closed = [e for e in events if e.event is EventKind.CLOSED]
    assert [(e.observed_at - T0) / timedelta(minutes=1) for e in closed] == [200 + DAY, 299 + DAY]


def test_the_search_grid_finds_every_item_in_range_however_wide_the_search() -> None:
    """_Buckets (open incidents' points, pending suspects): a search looks up each bucket of
    its range, or, when the range has more buckets than hold items (a suspect's reach allows
    for a 50 km satellite pixel), tests each bucket that holds some: the same items."""
    from firewatch.engine.incidents import _BUCKET_DEG, _Buckets

    rng = random.Random(8)
    buckets: _Buckets[Any] = _Buckets()
    points = []
    for _ in range(300):
        p = type(
            "P", (), {"lat": 28.9 + rng.uniform(-0.3, 0.3), "lon": 118.9 + rng.uniform(-0.3, 0.3)}
        )
        buckets.add(p)
        points.append(p)
    near_ones = 0
    for radius_km in (0.5, 2.0, 10.0, 27.0, 80.0):
        for _ in range(20):
            lat, lon = 28.9 + rng.uniform(-0.4, 0.4), 118.9 + rng.uniform(-0.4, 0.4)
            dy = math.ceil(radius_km / 110.574 / _BUCKET_DEG)
            dx = math.ceil(radius_km / (111.320 * math.cos(math.radians(lat))) / _BUCKET_DEG)
            ky, kx = math.floor(lat / _BUCKET_DEG), math.floor(lon / _BUCKET_DEG)
            want = {
                id(p)
                for p in points
                if abs(math.floor(p.lat / _BUCKET_DEG) - ky) <= dy
                and abs(math.floor(p.lon / _BUCKET_DEG) - kx) <= dx
            }
            got = [id(p) for p in buckets.near(lat, lon, radius_km)]
            assert len(got) == len(set(got)) and set(got) == want
            # and, from the points alone: every one within radius_km is among them
            cos = math.cos(math.radians(lat))
            close = {
                id(p)
                for p in points
                if math.hypot((p.lat - lat) * 110.574, (p.lon - lon) * 111.320 * cos) <= radius_km
            }
            assert close <= set(got)
            near_ones += len(close)
    assert near_ones > 300  # the property was tested on points, not on empty searches
