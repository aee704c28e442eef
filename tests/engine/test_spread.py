"""Fires that spread stay one incident: an incident merges what is within the merge radius (2 km)
of any of its last `track_points` (10) detections, reports where the fire is now and how far it
has spread, and names each team whose cells it reaches. The test grid's cells are 0.01 degrees;
teams own blocks of 5 x 5 cells: north of 28.95 N is team-1-*, south of it team-0-*."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from firewatch.engine.core import Engine
from firewatch.engine.incidents import distance_km
from firewatch.model import EventKind, IncidentEvent, Severity

from .conftest import KM_LAT, KM_LON, camera, place, run, sensor

HOURS = 6
DAY = 24 * 60
EVERY = 10  # minutes between detections of the front


def front(
    speed_kmh: float = 1.0, start: tuple[float, float] = (-1.0, 0.0), heading_deg: float = 0.0
) -> list[Any]:
    """A fire front running from `start` (km north, east of the grid's middle) at `speed_kmh`
    towards `heading_deg` for 6 h, seen by a tower camera every 10 min (strong: it opens alone)
    and every half hour by a sensor it passes (over its temperature threshold), each a few
    hundred metres off the front's centre."""
    rng = random.Random(1)
    north_per_h = speed_kmh * math.cos(math.radians(heading_deg))
    east_per_h = speed_kmh * math.sin(math.radians(heading_deg))
    records = []
    for m in range(0, HOURS * 60 + 1, EVERY):
        north, east = start[0] + north_per_h * m / 60, start[1] + east_per_h * m / 60
        jitter = rng.uniform(-0.2, 0.2)
        records.append(camera("tower", m, 0.9, north_km=north, east_km=east + jitter))
        if m % 30 == 0:
            at = {"north_km": north + 0.2, "east_km": east + rng.uniform(-0.3, 0.3)}
            records.append(sensor(f"s{m}", m + 2, **at))
    return records


def closing(records: list[Any]) -> list[Any]:
    """The records and a camera far away a day later, whose event time closes the incidents."""
    return [*records, camera("far", HOURS * 60 + DAY + 60, 0.9, north_km=-4.0, east_km=4.0)]


def still(dev: str, north_km: float, east_km: float, seed: int) -> list[Any]:
    """A fire that does not move, seen every 10 min for 6 h within 500 m of its centre."""
    rng = random.Random(seed)
    return [
        camera(
            dev,
            m,
            0.9,
            north_km=north_km + rng.uniform(-0.5, 0.5),
            east_km=east_km + rng.uniform(-0.5, 0.5),
        )
        for m in range(0, HOURS * 60 + 1, EVERY)
    ]


def opened(events: list[IncidentEvent]) -> list[IncidentEvent]:
    return [e for e in events if e.event is EventKind.OPENED]


def test_a_front_moving_1_km_an_hour_for_6_hours_is_one_incident(
    make_engine: Callable[..., Engine],
) -> None:
    records = front()
    events = run(make_engine(), closing(records))
    assert len(opened(events)) == 2  # the front, and the far camera a day later
    last = next(e for e in events if e.event is EventKind.CLOSED)
    assert last.incident_id == events[0].incident_id and last.detections == len(records)
    # it ran far beyond the merge radius of its first detection
    assert max(_north_km(r) for r in records) > 2.5 * 2.0
    # where it started (its first detection) and where it is now (its last detections)
    first = place(north_km=-1.0)
    assert distance_km(last.lat, last.lon, first["lat"], first["lon"]) < 0.4
    assert last.current_lat is not None and last.current_lon is not None
    now = place(north_km=-1.0 + HOURS)
    assert distance_km(last.current_lat, last.current_lon, now["lat"], now["lon"]) < 1.0
    assert last.extent is not None
    west, south, east, north = last.extent
    assert (north - south) / KM_LAT > HOURS - 0.5 and west < east
    assert last.area_km2 > 0


def _north_km(record: dict[str, Any]) -> float:
    return (record["lat"] - place(north_km=-1.0)["lat"]) / KM_LAT


def test_two_fires_10_km_apart_at_the_same_time_stay_two(
    make_engine: Callable[..., Engine],
) -> None:
    records = sorted(
        still("a", -3.5, -3.5, 1) + still("b", 3.5, 3.5, 2), key=lambda r: r["observed_at"]
    )
    events = run(make_engine(), records)
    assert len(opened(events)) == 2
    for e in events:
        assert e.extent is not None
        west, south, east, north = e.extent
        assert (north - south) / KM_LAT < 1.1  # each keeps to its own place
        assert (east - west) / KM_LON < 1.1


def test_a_spreading_fire_names_each_team_it_reaches(make_engine: Callable[..., Engine]) -> None:
    events = run(make_engine(), front())
    assert events[0].teams == ["team-0-1"] and events[0].team == "team-0-1"
    reached = next(e for e in events if "team-1-1" in e.teams)
    assert reached.event is EventKind.UPDATED  # the new team is told, through the queue
    assert reached.teams == ["team-0-1", "team-1-1"]
    assert reached.team == "team-0-1"  # the order stays with the first team
    assert events[events.index(reached) - 1].teams == ["team-0-1"]  # named as it is reached


def test_a_spreading_fire_rises_in_severity_where_a_still_one_does_not(
    make_engine: Callable[..., Engine],
) -> None:
    # the same cameras and sensors, 10.8 km north-east at 1.8 km/h or staying put (severity.yaml:
    # two kinds of source 2 points, 20 detections 2, a span of 10 km 2; the cells are low risk)
    spreading = run(make_engine(), closing(front(1.8, start=(-4.0, -4.0), heading_deg=45)))
    still_fire = run(make_engine(), closing(front(0.0, start=(-4.0, -4.0))))
    closed = [
        next(e for e in run_ if e.event is EventKind.CLOSED) for run_ in (spreading, still_fire)
    ]
    assert closed[0].detections == closed[1].detections
    assert closed[0].extent is not None and closed[1].extent is not None
    assert (closed[0].extent[3] - closed[0].extent[1]) / KM_LAT > 7  # 7.6 km north, and east
    assert (closed[1].extent[3] - closed[1].extent[1]) / KM_LAT < 1
    assert closed[0].severity is Severity.CRITICAL and closed[1].severity is Severity.HIGH


def test_events_do_not_depend_on_arrival_order_within_the_grace_period(
    make_engine: Callable[..., Engine],
) -> None:
    records = front() + still("a", -3.5, -3.5, 1) + still("b", 3.5, 3.5, 2)
    in_order = sorted(records, key=lambda r: (r["observed_at"], r["id"]))
    rng = random.Random(7)
    # each record arrives up to 8 minutes after its event time (grace: 10 minutes)
    shuffled = sorted(records, key=lambda r: _minutes(r) + rng.uniform(0, 8))
    assert shuffled != in_order
    expected = _dumped(run(make_engine(), in_order, batch=7))
    assert _dumped(run(make_engine(), shuffled, batch=7)) == expected
    assert _dumped(run(make_engine(), shuffled, batch=1000)) == expected


def _minutes(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["observed_at"]).timestamp() / 60


def _dumped(events: list[IncidentEvent]) -> list[bytes]:
    return [orjson.dumps(e.model_dump(mode="json")) for e in events]
