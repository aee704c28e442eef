"""Incident records on a real Redis: every event recorded once with what it does, and listings
that filter, page and stay bounded."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.linkage import incidents, keys
from firewatch.linkage.model import (
    IncidentNotFound,
    IncidentRecord,
    IncidentStatus,
    OrderState,
    QueryError,
    Resolution,
)
from firewatch.linkage.service import Linkage
from firewatch.model import EventKind, IncidentEvent, LocatedBy, Severity

from .conftest import T0, event, oid


def iid(n: int) -> str:
    return f"inc-{n:016x}"


def test_every_event_of_an_incident_is_recorded_with_its_latest_state(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    seen = T0 - timedelta(minutes=4)
    opened = event(n=1, severity="moderate", first_seen=seen, evidence=["c1", "c2"], detections=2)
    linkage.consume([opened])
    record = linkage.store.incident(iid(1))
    assert (record.status, record.severity, record.first_seen, record.last_seen) == (
        IncidentStatus.OPEN,
        Severity.MODERATE,
        seen,
        T0,
    )
    assert (record.recorded_at, record.updated_at, record.last_event) == (T0, T0, EventKind.OPENED)
    assert (record.team, record.village, record.township, record.district) == (
        "team-A",
        "V1",
        "T1",
        "D1",
    )
    assert (record.grid_id, record.grid_name, record.lat, record.lon) == (
        "cell-1",
        "cell 1",
        opened.lat,
        118.9,
    )
    assert (record.evidence, record.detections, record.rule) == (
        ["c1", "c2"],
        2,
        "camera.confident",
    )
    assert record.events == [opened] and record.order_id == oid(1)
    assert record.order is not None and record.order.state is OrderState.PENDING
    assert [e.kind for e in record.order_log] == ["created", "notified"]
    assert set(_indexed(redis_client, iid(1))) >= {
        "fw:incidents:status:open",
        "fw:incidents:severity:moderate",
    }

    clock.advance(minutes=30)
    sources = {"sensor": 1, "camera": 1, "satellite": 0}
    updated = event(
        "updated", n=1, seq=1, severity="high", minutes=20, first_seen=seen, detections=3,
        sources=sources,
    )  # fmt: skip
    linkage.consume([updated])
    clock.advance(hours=30)
    closed = updated.model_copy(
        update={
            "event": EventKind.CLOSED,
            "event_id": f"{iid(1)}/2",
            "observed_at": T0 + timedelta(hours=24, minutes=20),
        }
    )
    linkage.consume([closed])
    linkage.close(oid(1), Resolution.EXTINGUISHED, by="team:team-A")

    record = linkage.store.incident(iid(1))
    assert record.events == [opened, updated, closed]
    assert (record.status, record.severity, record.detections, record.sources) == (
        IncidentStatus.CLOSED,
        Severity.HIGH,
        3,
        sources,
    )
    assert record.last_seen == T0 + timedelta(minutes=20) and record.first_seen == seen
    assert record.closed_at == closed.observed_at and record.last_event is EventKind.CLOSED
    assert (record.recorded_at, record.updated_at) == (T0, T0 + timedelta(hours=30, minutes=30))
    assert record.order is not None and record.order.state is OrderState.CLOSED
    assert record.order.severity is Severity.HIGH
    assert record.order_log[-1].by == "team:team-A"
    assert _indexed(redis_client, iid(1)) == {
        "fw:incidents:by_first_seen": seen.timestamp(),
        "fw:incidents:status:closed": seen.timestamp(),
        "fw:incidents:severity:high": seen.timestamp(),
        "fw:incidents:team:team-A": seen.timestamp(),
        "fw:incidents:village:V1": seen.timestamp(),
        "fw:incidents:township:T1": seen.timestamp(),
        "fw:incidents:district:D1": seen.timestamp(),
    }


def _indexed(client: redis.Redis, incident_id: str) -> dict[str, float]:
    """The listing indexes that hold an incident, with its score in each."""
    r: Any = client
    out = {}
    for key in r.keys("fw:incidents:*"):
        score = r.zscore(key, incident_id)
        if score is not None:
            out[key.decode()] = score
    return out


def test_the_record_follows_where_a_spreading_fire_is_now(linkage: Linkage) -> None:
    linkage.consume([event(n=1, current_lat=28.91, current_lon=118.9, teams=["team-A"])])
    assert linkage.store.incident(iid(1)).teams == ["team-A"]
    moved = event(
        "updated",
        n=1,
        seq=1,
        current_lat=28.95,
        current_lon=118.93,
        extent=(118.9, 28.91, 118.94, 28.96),
        area_km2=21.6,
        teams=["team-A", "team-B"],
    )
    linkage.consume([moved])
    record = linkage.store.incident(iid(1))
    assert (record.lat, record.lon) == (28.91, 118.9)  # its first detection
    assert (record.current_lat, record.current_lon, record.area_km2) == (28.95, 118.93, 21.6)
    assert record.extent == (118.9, 28.91, 118.94, 28.96)
    assert record.teams == ["team-A", "team-B"] and record.team == "team-A"
    listed, _ = linkage.store.incidents()
    assert [(r.id, r.current_lat, r.teams) for r in listed] == [(iid(1), 28.95, record.teams)]


def test_the_record_says_how_the_incident_was_placed(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, located_by="line_of_sight", uncertainty_m=7200.5)])
    r: Any = redis_client
    raw = r.hmget(keys.incident_record(iid(1)), "located_by", "uncertainty_m")
    assert raw == [b"line_of_sight", b"7200.5"]  # the hash itself, as the script wrote it
    record = linkage.store.incident(iid(1))
    assert (record.located_by, record.uncertainty_m) == (LocatedBy.LINE_OF_SIGHT, 7200.5)
    crossed = event(
        "updated", n=1, seq=1, lat=28.93, lon=118.91, located_by="triangulated", uncertainty_m=180.0
    )
    linkage.consume([crossed])
    record = linkage.store.incident(iid(1))
    assert (record.lat, record.lon) == (28.93, 118.91)  # moved to the crossing
    assert (record.located_by, record.uncertainty_m) == (LocatedBy.TRIANGULATED, 180.0)
    raw = r.hmget(keys.incident_record(iid(1)), "lat", "lon", "located_by", "uncertainty_m")
    assert raw == [b"28.93", b"118.91", b"triangulated", b"180.0"]
    assert linkage.store.incident(iid(1)).events[-1].located_by is LocatedBy.TRIANGULATED


def test_a_redelivered_event_is_recorded_once(linkage: Linkage, redis_client: redis.Redis) -> None:
    batch = [event(n=1), event("updated", n=1, seq=1, severity="high"), event("closed", n=1, seq=2)]
    assert linkage.consume(batch).recorded == 3
    r: Any = redis_client
    entries = r.xlen(keys.FEED)
    assert linkage.consume(batch).recorded == 0
    assert linkage.consume(batch[1:2] + batch[:1]).recorded == 0  # in any order
    assert r.xlen(keys.FEED) == entries
    assert [e.event_id for e in linkage.store.incident(iid(1)).events] == [
        f"{iid(1)}/0",
        f"{iid(1)}/1",
        f"{iid(1)}/2",
    ]


def test_an_older_event_arriving_late_does_not_undo_a_newer_one(linkage: Linkage) -> None:
    opened = event(n=1, detections=1)
    newer = event("updated", n=1, seq=2, severity="critical", minutes=9, detections=5)
    older = event("updated", n=1, seq=1, severity="high", minutes=5, detections=3)
    closed = event("closed", n=1, seq=3, severity="critical", minutes=60 * 24, detections=5)
    linkage.consume([opened, newer, closed])
    linkage.consume([older])  # redelivered late, after the close
    record = linkage.store.incident(iid(1))
    assert [e.event_id for e in record.events][-1] == older.event_id  # recorded, in arrival order
    assert (record.status, record.severity, record.detections) == (
        IncidentStatus.CLOSED,
        Severity.CRITICAL,
        5,
    )
    assert [r.id for r in linkage.store.incidents(severity=Severity.CRITICAL)[0]] == [iid(1)]
    assert linkage.store.incidents(severity=Severity.HIGH)[0] == []
    assert linkage.store.incidents(status=IncidentStatus.OPEN)[0] == []


def test_an_incident_dispatched_before_records_existed_gets_one_from_its_next_event(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1), event(n=2)])
    # as the code before incident records left them: the orders, no record, no index entry
    r: Any = redis_client
    for n in (1, 2):
        r.delete(
            keys.incident_record(iid(n)), keys.incident_events(iid(n)), keys.incident_seen(iid(n))
        )
    for key in r.keys("fw:incidents:*"):
        r.delete(key)
    with pytest.raises(
        IncidentNotFound, match=f"{iid(2)}.*its order {oid(2)} was dispatched before"
    ):
        linkage.store.incident(iid(2))
    with pytest.raises(IncidentNotFound, match=r"no incident 'inc-nope'$"):
        linkage.store.incident("inc-nope")

    counts = linkage.consume([event("updated", n=1, seq=1, severity="critical", detections=2)])
    assert (counts.renotified, counts.recorded, counts.unknown) == (1, 1, 0)
    record = linkage.store.incident(iid(1))
    assert (record.status, record.severity, record.order_id) == (
        IncidentStatus.OPEN,
        Severity.CRITICAL,
        oid(1),
    )
    assert [e.event for e in record.events] == [EventKind.UPDATED]
    assert record.order is not None and record.order.severity is Severity.CRITICAL
    again = linkage.consume([event(n=2)])  # its `opened` event redelivered: now recorded
    assert (again.created, again.duplicates, again.recorded) == (0, 1, 1)
    assert [e.event for e in linkage.store.incident(iid(2)).events] == [EventKind.OPENED]
    assert linkage.consume([event("closed", n=2, seq=1)]).incident_closed == 1
    assert linkage.store.incident(iid(2)).status is IncidentStatus.CLOSED
    listed, _ = linkage.store.incidents()
    assert [x.id for x in listed] == [iid(2), iid(1)]  # same first_seen: id descending


def test_an_update_for_an_incident_never_dispatched_is_still_recorded(linkage: Linkage) -> None:
    counts = linkage.consume([event("updated", n=9, seq=4, severity="high")])
    assert (counts.unknown, counts.recorded) == (1, 1)
    record = linkage.store.incident(iid(9))
    assert record.order_id is None and record.order is None and record.order_log == []


# -- listing -------------------------------------------------------------------------------------
PLACES = [
    ("team-A", "V1", "T1", "D1"),
    ("team-B", "V2", "T1", "D1"),
    ("team-C", "V3", "T2", "D1"),
    ("team-D", "V4", "T3", "D2"),
]


def _season(linkage: Linkage, clock: FakeClock, n: int, seed: int = 7) -> list[IncidentEvent]:
    """`n` incidents over 10 days, in four places, with mixed severities; some updated (a rise)
    and some closed; a few share their first detection's time."""
    rng = random.Random(seed)
    events = []
    for i in range(1, n + 1):
        team, village, township, district = rng.choice(PLACES)
        minutes = rng.randrange(0, 60 * 24 * 10, 60 if i % 5 == 0 else 1)  # hours tie often
        severity = rng.choice(["low", "moderate", "high"])
        first: dict[str, Any] = {
            "team": team,
            "village": village,
            "township": township,
            "district": district,
            "first_seen": T0 + timedelta(minutes=minutes),
        }
        events.append(event(n=i, severity=severity, minutes=minutes, **first))
        if rng.random() < 0.3:
            severity = "critical"
            events.append(
                event("updated", n=i, seq=1, severity=severity, minutes=minutes + 5, **first)
            )
        if rng.random() < 0.4:
            closing = minutes + 60 * 24
            events.append(event("closed", n=i, seq=2, severity=severity, minutes=closing, **first))
    linkage.consume(events)
    return events


def _expected(linkage: Linkage, n: int, **f: Any) -> list[IncidentRecord]:
    """The listing worked out by reading every record."""
    every = [linkage.store.incident(iid(i)) for i in range(1, n + 1)]
    keep = [
        x
        for x in every
        if all(
            getattr(x, k) == v
            for k, v in f.items()
            if k not in ("since", "until") and v is not None
        )
        and (f.get("since") is None or x.first_seen >= f["since"])
        and (f.get("until") is None or x.first_seen <= f["until"])
    ]
    bare = [x.model_copy(update={"events": [], "order": None, "order_log": []}) for x in keep]
    return sorted(bare, key=lambda x: (x.first_seen, x.id), reverse=True)


def _all_pages(linkage: Linkage, limit: int, **f: Any) -> tuple[list[IncidentRecord], int]:
    out, cursor, pages = [], None, 0
    while True:
        page, cursor = linkage.store.incidents(limit=limit, cursor=cursor, **f)
        out += page
        pages += 1
        assert len(page) <= limit
        if cursor is None:
            return out, pages


QUERIES: list[dict[str, Any]] = [
    {},
    {"status": IncidentStatus.OPEN},
    {"status": IncidentStatus.CLOSED, "severity": Severity.CRITICAL},
    {"severity": Severity.LOW, "team": "team-B"},
    {"village": "V3"},
    {"township": "T1", "status": IncidentStatus.OPEN},
    {"district": "D1", "severity": Severity.HIGH},
    {"team": "team-D", "district": "D1"},  # none: team-D is in D2
    {"since": T0 + timedelta(days=2), "until": T0 + timedelta(days=5, hours=3)},
    {"district": "D2", "since": T0 + timedelta(days=7)},
    {"status": IncidentStatus.CLOSED, "until": T0 + timedelta(days=3)},
]


@pytest.mark.parametrize("f", QUERIES, ids=["-".join(sorted(q)) or "all" for q in QUERIES])
def test_a_listing_filters_and_pages_newest_first(
    linkage: Linkage, clock: FakeClock, f: dict[str, Any]
) -> None:
    _season(linkage, clock, 120)
    expected = _expected(linkage, 120, **f)
    assert expected or f.get("team") == "team-D"  # the season has something for the query
    assert linkage.store.incidents(limit=1000, **f) == (expected, None)
    for limit in (1, 7, 50):
        got, pages = _all_pages(linkage, limit, **f)
        assert got == expected  # every match once, in order, across pages
        assert pages == len(expected) // limit + 1
    exported = incidents.iterate(linkage.store.r, incidents.Query(**f), page=9)  # a CSV export
    assert list(exported) == expected


def test_pages_step_over_incidents_that_share_their_first_detection_time(
    linkage: Linkage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incidents, "CHUNK", 3)  # ties span several index reads
    linkage.consume([event(n=n, minutes=0 if n <= 25 else 30) for n in range(1, 41)])
    got, _ = _all_pages(linkage, 4)
    assert [x.id for x in got] == [iid(n) for n in range(40, 25, -1)] + [
        iid(n) for n in range(25, 0, -1)
    ]
    got, _ = _all_pages(linkage, 4, status=IncidentStatus.OPEN, team="team-A")
    assert len(got) == 40 and len({x.id for x in got}) == 40


def test_a_selective_query_reads_a_bounded_number_of_records_per_page(
    linkage: Linkage, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    monkeypatch.setattr(incidents, "SCAN_LIMIT", 10)
    monkeypatch.setattr(incidents, "CHUNK", 4)
    events = [event(n=n, severity="high" if n % 2 else "low", minutes=n) for n in range(1, 41)]
    events += [event("closed", n=n, seq=1, minutes=n) for n in range(2, 41, 2)]
    events += [event("closed", n=n, seq=1, minutes=n, severity="high") for n in (5, 29)]
    linkage.consume(events)  # 20 high, 22 closed, both: 5 and 29
    reads: list[int] = []
    real = redis_client.pipeline

    def counting(*args: Any, **kw: Any) -> Any:
        pipe = real(*args, **kw)
        execute = pipe.execute

        def run(*a: Any, **k: Any) -> Any:
            reads.append(sum(1 for args, _ in pipe.command_stack if args[0] == "HGETALL"))
            return execute(*a, **k)

        pipe.execute = run
        return pipe

    monkeypatch.setattr(redis_client, "pipeline", counting)
    out, cursor, calls = [], None, 0
    while True:
        page, cursor = linkage.store.incidents(
            status=IncidentStatus.CLOSED, severity=Severity.HIGH, cursor=cursor
        )
        out += page
        calls += 1
        if cursor is None:
            break
    assert [x.id for x in out] == [iid(29), iid(5)]
    assert calls == 3  # 20 candidates, 10 a call: short pages with a cursor to go on from
    assert sum(reads) == 20 and max(reads) <= 4


def test_listing_refuses_what_it_cannot_answer(linkage: Linkage) -> None:
    linkage.consume([event()])
    for bad in ("nonsense", "12.5", "/inc-1", "nan/inc-1", "inf/inc-1"):
        with pytest.raises(QueryError, match="not a cursor this listing returned"):
            linkage.store.incidents(cursor=bad)
    for limit in (0, 1001):
        with pytest.raises(QueryError, match=f"limit must be 1..1000, not {limit}"):
            linkage.store.incidents(limit=limit)
    with pytest.raises(QueryError, match="since 2026-04-04T02:00:00 needs a UTC offset"):
        linkage.store.incidents(since=T0.replace(tzinfo=None))
    assert linkage.store.incidents(since=T0 + timedelta(seconds=1)) == ([], None)
    assert linkage.store.incidents(until=T0)[0][0].id == iid(1)  # bounds are inclusive
    assert incidents.query(linkage.store.r, incidents.Query(team="nobody")) == ([], None)


def test_a_late_detection_that_moves_first_seen_moves_the_incident_in_every_index(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, minutes=30), event(n=2, minutes=20)])
    assert [x.id for x in linkage.store.incidents()[0]] == [iid(1), iid(2)]
    earlier = T0 + timedelta(minutes=10)  # a detection late by 20 min joined incident 1
    linkage.consume([event("updated", n=1, seq=1, minutes=31, first_seen=earlier, detections=2)])
    scores = _indexed(redis_client, iid(1))
    assert len(scores) == 7 and set(scores.values()) == {earlier.timestamp()}
    assert [x.id for x in linkage.store.incidents()[0]] == [iid(2), iid(1)]
    assert linkage.store.incidents(until=T0 + timedelta(minutes=15))[0][0].first_seen == earlier
