"""Cameras placed by their bearings (rules: triangulation; engine/sights.py), through the engine.

Towers stand at known places around a fire in the test grid (10 x 10 km, cells of 0.01 degrees)
and send where they stand as the record's lat/lon (nothing known along their line) unless a test
says otherwise; bearings are the true bearing to the fire plus the stated error."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from firewatch.engine.core import Engine
from firewatch.engine.incidents import Place, distance_km
from firewatch.engine.signals import Signal, Strength
from firewatch.model import EventKind, IncidentEvent, LocatedBy, Outcome, Source
from firewatch.rules.model import Mask

from .conftest import KM_LAT, KM_LON, camera, place, run, sensor

FIRE = (0.0, 0.0)  # km north, east of the grid's middle
DAY = 24 * 60 + 30  # minutes: a record this late closes what came before
Km = tuple[float, float]


def bearing_to(camera: Km, target: Km) -> float:
    """Degrees clockwise from north, from `camera` to `target` (both km north, east)."""
    c, t = place(*camera), place(*target)
    dx = (t["lon"] - c["lon"]) * 111_320.0 * math.cos(math.radians(c["lat"]))
    dy = (t["lat"] - c["lat"]) * 110_574.0
    return math.degrees(math.atan2(dx, dy)) % 360.0


def around(distance_km: float, from_deg: float) -> Km:
    """A point `distance_km` from the fire, in direction `from_deg` (clockwise from north)."""
    b = math.radians(from_deg)
    return FIRE[0] + distance_km * math.cos(b), FIRE[1] + distance_km * math.sin(b)


def tower(
    dev: str,
    minutes: float,
    stands: Km,
    error_deg: float = 0.0,
    *,
    target: Km = FIRE,
    conf: float = 0.9,
    says: Km | None = None,
) -> dict[str, Any]:
    """A tower camera at `stands` seeing smoke at `target`; its record's lat/lon is where it
    stands, or `says` (a vendor's estimate)."""
    c = place(*stands)
    north, east = says if says is not None else stands
    return {
        **camera(dev, minutes, conf, north_km=north, east_km=east),
        "camera_lat": c["lat"],
        "camera_lon": c["lon"],
        "bearing_deg": (bearing_to(stands, target) + error_deg) % 360.0,
    }


def last(events: list[IncidentEvent]) -> dict[str, IncidentEvent]:
    """Each incident's last event before it closed."""
    out: dict[str, IncidentEvent] = {}
    for e in events:
        if e.event is not EventKind.CLOSED:
            out[e.incident_id] = e
    return out


def off_km(e: IncidentEvent, target: Km = FIRE) -> float:
    p = place(*target)
    return distance_km(e.lat, e.lon, p["lat"], p["lon"])


def the_one(events: list[IncidentEvent]) -> IncidentEvent:
    found = last(events)
    assert len(found) == 1, [(e.incident_id, e.lat, e.lon, e.located_by) for e in found.values()]
    return next(iter(found.values()))


def in_its_cell(engine: Engine, e: IncidentEvent) -> None:
    """The event's grid cell and team are those of the cell its lat/lon is in."""
    cell = engine.grid.cells[int(engine.index.locate([e.lon], [e.lat])[0])]
    assert (e.grid_id, e.team) == (cell.id, cell.team)


@pytest.mark.parametrize("angle", [20, 45, 90])
@pytest.mark.parametrize("errors", list(itertools.product((-1.0, 1.0), repeat=2)))
def test_two_cameras_locate_the_fire_within_300_m_with_1_degree_off(
    make_engine: Callable[..., Engine], angle: int, errors: tuple[float, float]
) -> None:
    a, b = around(2.5, 200.0), around(2.5, 200.0 + angle)
    engine = make_engine()
    events = run(engine, [tower("A", 0, a, errors[0]), tower("B", 2, b, errors[1])])
    e = the_one(events)  # B's crossing joined A's incident
    assert e.located_by is LocatedBy.TRIANGULATED
    assert off_km(e) <= 0.300
    assert e.uncertainty_m is not None and off_km(e) * 1000 <= e.uncertainty_m <= 2000
    in_its_cell(engine, e)
    assert [x.event for x in events].count(EventKind.OPENED) == 1


def test_three_cameras_locate_it_closer_than_two(make_engine: Callable[..., Engine]) -> None:
    rng = random.Random(5)
    two, three, certain2, certain3 = [], [], [], []
    for _ in range(30):
        e1, e2, e3 = (rng.gauss(0.0, 1.0) for _ in range(3))
        cams = [tower("A", 0, around(3.0, 180), e1), tower("B", 2, around(3.0, 240), e2)]
        pair = the_one(run(make_engine(), cams))
        trio = the_one(run(make_engine(), [*cams, tower("C", 4, around(3.0, 330), e3)]))
        assert pair.located_by is trio.located_by is LocatedBy.TRIANGULATED
        two.append(off_km(pair))
        three.append(off_km(trio))
        certain2.append(pair.uncertainty_m or 0.0)
        certain3.append(trio.uncertainty_m or 0.0)
    assert sum(three) < 0.8 * sum(two)
    assert max(three) <= 0.300
    assert sum(certain3) < sum(certain2)


def test_parallel_lines_of_sight_never_cross_far_away(make_engine: Callable[..., Engine]) -> None:
    # two towers 1 km apart looking the same way, 5 degrees apart: their lines meet 11 km off
    a, b = (-4.0, -0.5), (-4.0, 0.5)
    cams = [tower("A", 0, a, target=(4.0, 0.2)), tower("B", 2, b, target=(4.0, -0.5))]
    events = run(make_engine(), cams)
    found = last(events)
    assert found and all(e.located_by is LocatedBy.LINE_OF_SIGHT for e in found.values())
    for e in found.values():
        assert abs(e.lat - place(0.0, 0.0)["lat"]) < 5.5 * KM_LAT  # in the grid, not 11 km off
        assert abs(e.lon - place(0.0, 0.0)["lon"]) < 5.5 * KM_LON


@pytest.mark.parametrize("apart", [7, 11])
@pytest.mark.parametrize("errors", list(itertools.product((-1.0, 1.0), repeat=2)))
def test_towers_facing_each_other_across_a_fire_place_it_once(
    make_engine: Callable[..., Engine], apart: int, errors: tuple[float, float]
) -> None:
    """Two towers on either side of a fire see it along nearly one line (lines `apart` degrees
    apart, under the rules' 15, each bearing 1 degree off): their lines cross between them
    (geo.sight.crosses_well), so one incident, triangulated, the fire within its stated
    uncertainty. Before, each tower placed it on its own line: two incidents."""
    a, b = around(3.0, 270.0), around(2.5, 90.0 + apart)
    engine = make_engine()
    events = run(engine, [tower("A", 0, a, errors[0]), tower("B", 2, b, errors[1])])
    e = the_one(events)
    assert e.located_by is LocatedBy.TRIANGULATED
    assert e.uncertainty_m is not None and off_km(e) * 1000 <= e.uncertainty_m <= 3_000
    in_its_cell(engine, e)
    assert [x.event for x in events].count(EventKind.OPENED) == 1


def test_one_camera_is_placed_on_its_line_with_its_uncertainty(
    make_engine: Callable[..., Engine],
) -> None:
    stands = (-4.5, -4.5)  # the grid's south-west corner: its line runs across the grid
    engine = make_engine()
    e = the_one(run(engine, [tower("A", 0, stands, target=(4.5, 4.5))]))
    assert e.located_by is LocatedBy.LINE_OF_SIGHT and e.uncertainty_m is not None
    sight = place(*stands)
    # on the line: north-east from the tower
    north = (e.lat - sight["lat"]) / KM_LAT
    east = (e.lon - sight["lon"]) / KM_LON
    assert abs(north - east) < 0.1 and north > 2.0
    # nothing known along the line: the uncertainty covers the stretch of it in the grid
    assert e.uncertainty_m >= 5_000
    in_its_cell(engine, e)


def test_a_vendor_estimate_is_moved_onto_the_line(make_engine: Callable[..., Engine]) -> None:
    stands = (-3.0, 0.0)  # 3 km south of the fire, looking north
    says = (0.1, 0.4)  # the vendor's estimate: 400 m east of the line
    e = the_one(run(make_engine(), [tower("A", 0, stands, says=says)]))
    assert e.located_by is LocatedBy.LINE_OF_SIGHT
    assert abs(e.lon - place(*FIRE)["lon"]) < 0.01 * KM_LON  # on the line, 10 m at most
    assert abs(e.lat - place(*says)["lat"]) < 0.01 * KM_LAT  # as far along as the estimate


def test_a_line_of_sight_joins_the_fire_a_sensor_found(make_engine: Callable[..., Engine]) -> None:
    found = [sensor("s1", 0), sensor("s1", 5)]  # over threshold twice: sensor.repeat
    cams = [tower("A", 8, around(4.0, 120), 1.0), tower("A", 14, around(4.0, 120), -1.0)]
    events = run(make_engine(), [*found, *cams, sensor("far", DAY, north_km=-4.5)])
    e = the_one(events)
    assert e.rule == "sensor.repeat"
    closed = [x for x in events if x.event is EventKind.CLOSED]
    assert len(closed) == 1 and closed[0].sources["camera"] == 2  # both lines joined it
    assert e.located_by is LocatedBy.DETECTION  # the sensor's own place stays
    assert off_km(e) < 0.01


def test_a_line_of_sight_incident_moves_to_the_crossing(
    make_engine: Callable[..., Engine],
) -> None:
    a, b = around(3.0, 170), around(3.0, 250)
    events = run(make_engine(), [tower("A", 0, a, 0.5), tower("A", 4, a, -0.3), tower("B", 6, b)])
    opened, moved = [e for e in events if e.event is not EventKind.CLOSED]
    assert opened.located_by is LocatedBy.LINE_OF_SIGHT and off_km(opened) > 0.5
    assert moved.event is EventKind.UPDATED and moved.incident_id == opened.incident_id
    assert moved.located_by is LocatedBy.TRIANGULATED and off_km(moved) <= 0.2
    # its lines of sight's guesses were forgotten: what it covers is where the crossing is
    assert moved.area_km2 < 0.05
    assert moved.current_lat is not None and moved.current_lon is not None
    assert distance_km(moved.current_lat, moved.current_lon, moved.lat, moved.lon) < 0.2


def test_a_sight_of_another_fire_makes_no_ghost(make_engine: Callable[..., Engine]) -> None:
    # fire 1 (south-west) is found by a sensor and tower A sees it; tower B sees fire 2 (north)
    # a minute later. A's and B's lines cross near (0, -1): no fire there.
    fire1, fire2 = (-3.0, -3.0), (3.0, 1.0)
    a, b = (0.0, -4.0), (-1.0, 3.0)
    records = [
        sensor("s1", 0, north_km=fire1[0], east_km=fire1[1]),
        sensor("s1", 4, north_km=fire1[0], east_km=fire1[1]),
        tower("A", 6, a, target=fire1),
        tower("B", 7, b, target=fire2, says=(2.8, 1.2)),
    ]
    found = last(run(make_engine(), records))
    assert len(found) == 2
    far = [e for e in found.values() if e.rule != "sensor.repeat"]
    assert len(far) == 1 and far[0].located_by is LocatedBy.LINE_OF_SIGHT
    assert off_km(far[0], fire2) < 0.3


def test_without_triangulation_a_camera_is_where_its_record_says(
    make_engine: Callable[..., Engine], rules: Any
) -> None:
    off = rules.model_copy(
        update={"triangulation": rules.triangulation.model_copy(update={"enabled": False})}
    )
    a, b = around(2.5, 200.0), around(2.5, 260.0)
    found = last(run(make_engine(off), [tower("A", 0, a), tower("B", 2, b)]))
    assert all(e.located_by is LocatedBy.DETECTION for e in found.values())
    assert {(round(e.lat, 6), round(e.lon, 6)) for e in found.values()} <= {
        (round(place(*p)["lat"], 6), round(place(*p)["lon"], 6)) for p in (a, b)
    }


def watched(seed: int = 3, hours: float = 2.0) -> list[dict[str, Any]]:
    """Two fires 5 km apart seen for `hours` by three towers every 5 minutes (bearing errors of
    1 degree; tower C sends a vendor's estimate), a sensor at one of them, and a record a day
    later whose event time closes them."""
    rng = random.Random(seed)
    fires, towers = [(-2.0, -2.0), (2.0, 2.5)], {"A": (-4.5, 3.0), "B": (4.5, -3.5), "C": (0, 4.5)}
    records = []
    for m in range(0, int(hours * 60), 5):
        for k, (name, stands) in enumerate(towers.items()):
            target = fires[(m // 5 + k) % 2]
            says = None if name != "C" else (target[0] + 0.3, target[1] - 0.2)
            err = rng.gauss(0.0, 1.0)
            records.append(tower(name, m + k, stands, err, target=target, says=says))
        if m % 15 == 0:
            records.append(sensor("s", m + 3, north_km=fires[0][0], east_km=fires[0][1]))
    return [*records, sensor("far", DAY + hours * 60, north_km=4.5, east_km=-4.5)]


def test_events_do_not_depend_on_arrival_order_within_the_grace_period(
    make_engine: Callable[..., Engine],
) -> None:
    records = watched()
    in_order = sorted(records, key=lambda r: (r["observed_at"], r["id"]))
    rng = random.Random(7)
    shuffled = sorted(records, key=lambda r: _minutes(r) + rng.uniform(0, 8))  # grace: 10 min
    assert shuffled != in_order
    expected = run(make_engine(), in_order, batch=5)
    assert {e.located_by for e in expected} >= {LocatedBy.TRIANGULATED, LocatedBy.LINE_OF_SIGHT}
    for order, batch in ((shuffled, 5), (shuffled, 1000), (in_order, 1)):
        assert run(make_engine(), order, batch=batch) == expected


def _minutes(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["observed_at"]).timestamp() / 60


def test_an_unusable_sight_leaves_the_camera_where_its_record_says(
    make_engine: Callable[..., Engine],
) -> None:
    pole = {**tower("P", 0, (4.0, -4.0)), "camera_lat": 90.0, "camera_lon": 0.0}
    behind = tower("Q", 1, around(3.0, 90), target=around(6.0, 90))  # looking away: off the grid
    records = [pole, behind, tower("A", 2, around(2.5, 200)), tower("B", 3, around(2.5, 260))]
    found = last(run(make_engine(), records))
    by = {e.evidence[0].split("@")[0]: e for e in found.values()}
    assert by["P"].located_by is LocatedBy.DETECTION and off_km(by["P"], (4.0, -4.0)) < 0.01
    assert by["Q"].located_by is LocatedBy.LINE_OF_SIGHT  # on the part of its line in the grid
    assert by["A"].located_by is LocatedBy.TRIANGULATED  # the others are placed as before
    assert off_km(by["A"]) < 0.1


def suspects_crossing() -> list[dict[str, Any]]:
    """Two towers unsure of what they see (suspects: confidence 0.6) whose lines cross at the
    fire, then again; normal readings of a sensor every 3 minutes move event time on (so each
    tower's report is taken, and may be cut from the next, before the next arrives); and a record
    a day later that closes what they opened."""
    a, b = around(3.0, 150), around(3.0, 230)
    quiet = [sensor("q", m, temp=20.0, north_km=4.5, east_km=4.5) for m in range(2, 24, 3)]
    towers = [
        tower("A", 0, a, 0.4, conf=0.6),
        tower("B", 3, b, -0.6, conf=0.6),
        tower("A", 6, a, -0.2, conf=0.6),
        tower("B", 9, b, 0.5, conf=0.6),
    ]
    far = sensor("far", DAY, north_km=4.5, east_km=4.5, temp=20.0)
    return [*sorted([*towers, *quiet], key=lambda r: r["observed_at"]), far]


def test_two_unsure_cameras_whose_lines_cross_corroborate_each_other(
    make_engine: Callable[..., Engine],
) -> None:
    events = run(make_engine(), suspects_crossing())
    e = the_one(events)
    assert e.rule == "camera.corroborated" and e.located_by is LocatedBy.TRIANGULATED
    assert off_km(e) < 0.2
    closed = [x for x in events if x.event is EventKind.CLOSED]
    assert len(closed) == 1 and closed[0].sources["camera"] == 4
    assert closed[0].area_km2 < 0.05  # the suspects it crossed moved to the crossing


def test_a_mask_where_a_camera_placed_a_fire_suppresses_its_next_sightings(
    make_engine: Callable[..., Engine],
) -> None:
    # the closed loop: a false alarm closed where the tower's line placed it becomes a mask
    # there, which must hold the tower's later sightings, though their records say the tower
    stands = around(3.5, 200)
    engine = make_engine()
    first = the_one(run(engine, [tower("A", 0, stands, 0.3)]))
    assert first.located_by is LocatedBy.LINE_OF_SIGHT and off_km(first, stands) > 1.0
    engine.add_mask(
        Mask.model_validate(
            {
                "name": "closed-loop",
                "reason": "known_heat_source",
                "circle": {"lat": first.lat, "lon": first.lon, "radius_m": 500},
            }
        )
    )
    later = [tower("A", m, stands, e) for m, e in ((DAY, -0.4), (DAY + 20, 0.2))]
    assert [e.event for e in run(engine, later)] == [EventKind.CLOSED]  # the first one only
    assert engine.stats.suppressed_by["closed-loop"] == 2


def test_towers_outside_the_grid_are_routed_by_their_lines(
    make_engine: Callable[..., Engine],
) -> None:
    # two towers on hills south of the grid (it spans 5 km around its middle), sending where they
    # stand: their records are outside every cell, their lines run into the grid
    a, b = (-7.0, -2.0), (-6.5, 3.5)
    engine = make_engine()
    first = the_one(run(engine, [tower("A", 0, a)]))
    assert first.located_by is LocatedBy.LINE_OF_SIGHT and off_km(first, a) > 2.0
    in_its_cell(engine, first)
    both = the_one(run(engine, [tower("A", 20, a, 0.5), tower("B", 22, b, -0.5)]))
    assert both.located_by is LocatedBy.TRIANGULATED and off_km(both) < 0.3
    assert engine.stats.outcomes[Outcome.OUTSIDE] == 0


def test_without_a_sight_a_record_outside_the_grid_stays_outside(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    record = {k: v for k, v in tower("A", 0, (-7.0, -2.0)).items() if k != "bearing_deg"}
    assert run(engine, [record]) == []
    assert engine.stats.outcomes[Outcome.OUTSIDE] == 1


def _placed(north_km: float, how: LocatedBy, uncertainty_m: float | None) -> Signal:
    p = place(north_km, 0.0)
    return Signal(
        "s", 0.0, p["lat"], p["lon"], Source.CAMERA, "C", Strength.STRONG, 0, 0.0, 0.0, False,
        located_by=how, uncertainty_m=uncertainty_m,
    )  # fmt: skip


def test_a_place_gives_way_only_to_one_that_agrees_with_it() -> None:
    """A crossing of sights of two different fires (a ghost) can state a small uncertainty far
    from where the incident is; a signal that joined the incident must not carry it there. Only
    a better place whose 95% circle meets the incident's moves it (on the demo season this took
    the triangulated incidents' p90 distance from their fires from 1.78 km to 0.81 km,
    benchmarks/README.md "Camera placement")."""
    crossing = Place.of(_placed(0.0, LocatedBy.TRIANGULATED, 500.0))
    assert crossing.gives_way_to(_placed(0.6, LocatedBy.TRIANGULATED, 300.0))  # within 0.8 km
    assert not crossing.gives_way_to(_placed(3.0, LocatedBy.TRIANGULATED, 300.0))  # a ghost
    assert not crossing.gives_way_to(_placed(0.1, LocatedBy.TRIANGULATED, 400.0))  # not better
    line = Place.of(_placed(0.0, LocatedBy.LINE_OF_SIGHT, 7_800.0))
    assert line.gives_way_to(_placed(5.0, LocatedBy.TRIANGULATED, 300.0))
    assert line.gives_way_to(_placed(7.0, LocatedBy.DETECTION, None))
    assert not line.gives_way_to(_placed(12.0, LocatedBy.DETECTION, None))
    assert not line.gives_way_to(_placed(1.0, LocatedBy.LINE_OF_SIGHT, 7_800.0))
    detection = Place.of(_placed(0.0, LocatedBy.DETECTION, None))
    assert not detection.gives_way_to(_placed(0.1, LocatedBy.TRIANGULATED, 100.0))
