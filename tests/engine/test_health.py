"""Device health in event time: silent devices are down, cells nobody watches any more are blind."""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from firewatch.engine.core import Engine
from firewatch.engine.state import DEVICE_COLUMNS, StateError
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.model import DETECTIONS, DeviceEvent, DeviceEventKind, Event, IncidentEvent
from firewatch.rules import RuleSet, load_rules
from firewatch.rules.model import DeviceRules

from .conftest import T0, at, camera, place, sensor

ROOT = Path(__file__).resolve().parents[2]
NEW, DOWN, UP = DeviceEventKind.DEVICE_NEW, DeviceEventKind.DEVICE_DOWN, DeviceEventKind.DEVICE_UP
BLIND, WATCHED = DeviceEventKind.CELL_BLIND, DeviceEventKind.CELL_WATCHED
HOUR = 60


@pytest.fixture
def health_rules() -> RuleSet:
    """rules/ as shipped: devices on (sensors and cameras: 10 min, x3, at least 30 min)."""
    rules = load_rules(ROOT / "rules").model_copy(update={"masks": []})
    assert rules.devices.enabled and rules.devices.sensor is not None
    return rules


@pytest.fixture
def engine_with(grid_file: Path) -> Callable[[RuleSet], Engine]:
    def make(rules: RuleSet) -> Engine:
        grid = load_grid(grid_file)
        return Engine(grid, load_index(grid, None), rules)

    return make


def reading(dev: str, minutes: float, **where: float) -> dict[str, Any]:
    """A normal sensor reading: no fire signal, only a sign of life."""
    return sensor(dev, minutes, temp=20.0, co=1.0, **where)


def tower(dev: str, minutes: float, **where: float) -> dict[str, Any]:
    """A camera's clear view (smoke score 0.02): ignored as a fire signal, alive as a device.
    Where it stands: camera_lat/camera_lon, its record at the same place."""
    rec = camera(dev, minutes, 0.02, **where)
    return rec | {"camera_lat": rec["lat"], "camera_lon": rec["lon"]}


def feed(engine: Engine, records: list[dict[str, Any]], batch: int = 1000) -> list[Event]:
    events: list[Event] = []
    for i in range(0, len(records), batch):
        events += engine.process(DETECTIONS.validate_python(records[i : i + batch]))
    return events + engine.flush()


def device_events(events: list[Event]) -> list[DeviceEvent]:
    return [e for e in events if isinstance(e, DeviceEvent)]


def summary(events: list[Event]) -> list[tuple[str, str, str]]:
    return [
        (e.event.value, e.device_id or e.grid_id, e.observed_at.isoformat())
        for e in device_events(events)
    ]


def every(minutes: float, until: float, start: float = 0.0) -> list[float]:
    out, m = [], start
    while m <= until:
        out.append(m)
        m += minutes
    return out


def test_a_sensor_silent_for_three_hours_of_a_day_is_down_once_and_up_once(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    quiet = (10 * HOUR, 13 * HOUR)  # no reading from 10:00 to 13:00 (exclusive)
    records = [
        reading(dev, m, east_km=east)
        for m in every(10, 24 * HOUR)
        for dev, east in (("s1", 0.0), ("s2", 3.0))
        if not (dev == "s1" and quiet[0] < m < quiet[1])
    ]
    events = feed(engine_with(health_rules), records)
    got = [e for e in device_events(events) if e.device_id is not None]
    assert [(e.event, e.device_id, e.observed_at) for e in got[:2]] == [
        (NEW, "s1", T0),  # first heard: the device is known from now on
        (NEW, "s2", T0),
    ]
    got = got[2:]
    assert [(e.event, e.device_id) for e in got] == [(DOWN, "s1"), (UP, "s1")]
    down, up = got
    # last heard at 10:00; its interval is 10 min, so 30 min of silence is its tolerance
    assert down.last_heard == T0 + timedelta(minutes=quiet[0])
    assert down.observed_at == T0 + timedelta(minutes=quiet[0] + 30)
    assert down.interval_s == 600.0
    assert up.observed_at == T0 + timedelta(minutes=quiet[1])
    assert up.silent_s == 3 * 3600
    assert (down.grid_id, down.team, down.source) == ("c4-5", "team-0-1", "sensor")
    # its cell had one watcher: blind while it was down
    assert [(e.event, e.grid_id, e.observed_at) for e in events if e.device_id is None] == [
        (BLIND, "c4-5", down.observed_at),
        (WATCHED, "c4-5", up.observed_at),
    ]
    # the event ids are stable: a second run gives the same events, byte for byte
    again = feed(engine_with(health_rules), records)
    assert [e.model_dump_json() for e in device_events(again)] == [
        e.model_dump_json() for e in device_events(events)
    ]


def test_a_village_whose_devices_all_go_silent_is_blind_cell_by_cell(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    # village v0-0 is rows 0-4, columns 0-4 of the test grid: a sensor in each of its 25 cells,
    # and one in each of 25 cells of village v0-1 next to it; v0-0's go silent from 06:00 to 09:00
    def cell(r: int, c: int) -> dict[str, float]:
        return {"north_km": (r - 4) * 1.1057, "east_km": (c - 5) * 0.9742}

    sensors = [(f"s{r}{c}", r, c) for r in range(5) for c in range(10)]
    records = [
        reading(dev, m, **cell(r, c))
        for m in every(10, 12 * HOUR)
        for dev, r, c in sensors
        if not (c < 5 and 6 * HOUR < m < 9 * HOUR)
    ]
    events = feed(engine_with(health_rules), records)
    blind = [e for e in events if isinstance(e, DeviceEvent) and e.event is BLIND]
    assert sorted(e.grid_id for e in blind) == sorted(
        f"c{r}-{c}" for r in range(5) for c in range(5)
    )
    assert {e.village for e in blind} == {"v0-0"}
    assert {e.observed_at for e in blind} == {T0 + timedelta(hours=6, minutes=30)}
    assert all(e.devices == 1 for e in blind)
    watched = [e for e in device_events(events) if e.event is WATCHED]
    assert sorted(e.grid_id for e in watched) == sorted(e.grid_id for e in blind)
    assert {e.observed_at for e in watched} == {T0 + timedelta(hours=9)}
    downs = [e for e in device_events(events) if e.event is DOWN]
    assert len(downs) == 25 and {e.village for e in downs} == {"v0-0"}


def test_a_device_that_reports_every_six_hours_is_not_down_after_an_hour_of_silence(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    # a 6-hourly sensor beside a 10-minute one (which moves event time on) for four days; at
    # first nothing is known of it and it is judged by the sensor default (10 min, x3): its first
    # silence calls it down once; from then on it is judged by its own 6 hours (x3 = 18 h)
    slow = [reading("slow", m, east_km=2.0) for m in every(6 * HOUR, 4 * 24 * HOUR)]
    fast = [reading("fast", m) for m in every(10, 4 * 24 * HOUR + 5 * HOUR)]
    records = sorted(slow + fast, key=lambda r: r["observed_at"])
    events = feed(engine_with(health_rules), records)
    about_slow = [(e.event, e.observed_at) for e in device_events(events) if e.device_id == "slow"]
    assert about_slow == [
        (NEW, T0),
        (DOWN, T0 + timedelta(minutes=30)),
        (UP, T0 + timedelta(hours=6)),
    ]
    # the stream ends 5 h after its last report: more than an hour, far less than 18 h
    last = T0 + timedelta(hours=4 * 24)
    assert max(e.observed_at for e in device_events(events)) < last
    # and had the whole stream been 19 h longer, it would have been down 18 h after it
    longer = [reading("fast", m) for m in every(10, 4 * 24 * HOUR + 19 * HOUR)]
    records = sorted(slow + longer, key=lambda r: r["observed_at"])
    late = [
        e for e in device_events(feed(engine_with(health_rules), records)) if e.device_id == "slow"
    ]
    assert (late[-1].event, late[-1].observed_at) == (DOWN, last + timedelta(hours=18))
    assert late[-1].interval_s == 6 * 3600


def test_a_cell_is_blind_only_when_its_sensor_and_the_cameras_watching_it_are_all_down(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    rules = health_rules.model_copy(
        update={"devices": health_rules.devices.model_copy(update={"camera_watch_km": 1.5})}
    )
    # sensor s in c4-5; camera k stands in c4-6 (1 km east) and watches c4-5 too, not c4-8
    records = []
    for m in every(10, 10 * HOUR):
        if not 2 * HOUR < m < 8 * HOUR:  # s is silent from 02:00 to 08:00
            records.append(reading("s", m))
        if not 4 * HOUR < m < 6 * HOUR:  # k from 04:00 to 06:00
            records.append(tower("k", m, east_km=1.0))
        records.append(reading("far", m, east_km=3.0))  # c4-8: moves event time, watches alone
    events = feed(engine_with(rules), records)
    c45 = [
        (e.event, e.observed_at)
        for e in device_events(events)
        if e.grid_id == "c4-5" and e.device_id is None
    ]
    assert c45 == [
        (BLIND, T0 + timedelta(hours=5)),  # k went down after s (a camera: after an hour)
        (WATCHED, T0 + timedelta(hours=6)),  # k came back
    ]
    k_down = [e for e in device_events(events) if e.device_id == "k" and e.event is DOWN]
    assert len(k_down) == 1 and k_down[0].source == "camera" and k_down[0].grid_id == "c4-6"
    blind = {e.grid_id for e in device_events(events) if e.event is BLIND}
    assert "c4-8" not in blind  # far never stopped
    assert "c4-6" in blind  # k watches its own cell, where no sensor stands


def test_satellites_are_not_watched_and_health_off_gives_no_device_events(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    records = [reading("s", 0), reading("s", 5 * HOUR)]
    records.insert(
        1, {**sensor("x", 0), "source": "satellite", "confidence": 0.1, "readings": None}
    )
    records[1].pop("readings")
    on = device_events(feed(engine_with(health_rules), records))
    assert [(e.event, e.device_id) for e in on if e.device_id] == [
        (NEW, "s"),
        (DOWN, "s"),
        (UP, "s"),
    ]
    off = health_rules.model_copy(update={"devices": DeviceRules()})
    assert device_events(feed(engine_with(off), records)) == []


def _day(seed: int) -> list[dict[str, Any]]:
    """Ten sensors and two towers for 12 h, each with its own cadence and some silences."""
    rng = random.Random(seed)
    records = []
    for k in range(12):
        step = rng.choice([5, 10, 15])
        off = rng.uniform(0, 12 * HOUR), rng.uniform(0.5, 4) * HOUR
        where = {"north_km": rng.uniform(-4, 4), "east_km": rng.uniform(-4, 4)}
        for m in every(step, 12 * HOUR, start=rng.uniform(0, step)):
            if off[0] < m < off[0] + off[1]:
                continue
            m += rng.uniform(-1, 1)
            records.append(tower(f"k{k}", m, **where) if k >= 10 else reading(f"s{k}", m, **where))
    records.sort(key=lambda r: r["observed_at"])
    return records


def _shuffled_within(
    records: list[dict[str, Any]], minutes: float, seed: int
) -> list[dict[str, Any]]:
    """Arrival order moved around, no record later than `minutes` behind the newest before it."""
    rng = random.Random(seed)
    keyed = sorted(records, key=lambda r: (r["observed_at"], rng.random()))
    out: list[dict[str, Any]] = []
    for r in keyed:
        out.insert(max(0, len(out) - rng.randint(0, 6)), r)
    newest = ""
    kept = []
    for r in out:  # keep the property the grace period promises: drop what came too late
        if newest and r["observed_at"] < at(_minutes(newest) - minutes):
            continue
        newest = max(newest, r["observed_at"])
        kept.append(r)
    return kept


def _minutes(iso: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(iso) - T0).total_seconds() / 60


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_device_events_do_not_depend_on_batches_or_order_within_the_grace(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet, seed: int
) -> None:
    records = _day(seed)
    expected = summary(feed(engine_with(health_rules), records))
    assert any(kind == DOWN for kind, _, _ in expected)
    for batch in (1, 7, 1000):
        assert summary(feed(engine_with(health_rules), records, batch)) == expected, batch
    shuffled = _shuffled_within(records, 9, seed)
    sorted_kept = sorted(shuffled, key=lambda r: r["observed_at"])
    assert summary(feed(engine_with(health_rules), shuffled, 13)) == summary(
        feed(engine_with(health_rules), sorted_kept)
    )


def test_a_restored_engine_gives_the_device_events_of_an_uninterrupted_one(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    records = _day(4)
    expected = [
        e.model_dump_json() for e in device_events(feed(engine_with(health_rules), records, 50))
    ]
    for cut in range(50, len(records), 450):
        first = engine_with(health_rules)
        events = device_events(feed_without_flush(first, records[:cut], 50))
        second = engine_with(health_rules)
        second.restore(first.snapshot())
        events += device_events(feed(second, records[cut:], 50))
        assert [e.model_dump_json() for e in events] == expected, cut


def _as_version_4(snapshot: bytes) -> bytes:
    """A version 5 snapshot written as version 4 did: device columns as JSON lists (null for
    NaN), waiting records as [t, row] pairs."""
    doc = orjson.loads(snapshot)
    devices = doc["devices"]
    columns = {
        name: np.frombuffer(base64.b64decode(devices.pop(name)), dtype).tolist()
        for name, dtype in DEVICE_COLUMNS.items()
    }
    for name in ("last", "down_at"):
        columns[name] = [None if math.isnan(x) else x for x in columns[name]]
    waiting = list(zip(columns.pop("waiting_t"), columns.pop("waiting_row"), strict=True))
    devices.update(columns, waiting=waiting)
    doc["v"] = 4
    return orjson.dumps(doc)


def test_a_version_4_snapshot_of_device_health_is_read(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    records = _day(4)
    first = engine_with(health_rules)
    cut = 0
    while first.health.down_count == 0:  # to a moment when a device is down
        feed_without_flush(first, records[cut : cut + 50], 50)
        cut += 50
    assert cut < len(records)
    m = (datetime.fromisoformat(records[cut - 1]["observed_at"]) - T0).total_seconds() / 60
    feed_without_flush(first, [reading("s-new", m)], 1)  # waiting: not yet released
    snapshot = first.snapshot()
    old = _as_version_4(snapshot)
    devices = orjson.loads(old)["devices"]
    assert devices["waiting"] and None in devices["last"] and None in devices["down_at"]
    assert any(x is not None for x in devices["down_at"])  # the nulls and the values both
    second = engine_with(health_rules)
    second.restore(old)
    assert second.snapshot() == snapshot  # as if taken by this version
    too_large = orjson.loads(old)
    too_large["devices"]["source"][0] = 300  # no source code: and beyond the column's int8
    with pytest.raises(StateError, match=r"devices\.source: Python integer 300 out of bounds"):
        engine_with(health_rules).restore(orjson.dumps(too_large))
    rest = [e.model_dump_json() for e in feed(second, records[cut:], 50)]
    assert rest and rest == [e.model_dump_json() for e in feed(first, records[cut:], 50)]


def _set(name: str, at: int, value: float) -> Callable[[dict[str, Any]], None]:
    def change(columns: dict[str, Any]) -> None:
        columns[name] = columns[name].copy()
        columns[name][at] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("source", -1, 99), "devices.source: an unknown source code"),
        (_set("cell", 0, 10**6), "devices.cell: a cell not in the grid"),
        (_set("lat", 1, math.nan), "devices.lat: not a finite number"),
        (_set("last", -1, math.inf), "devices.last: not a finite number"),
        (_set("gaps", 0, -1), "devices.gaps: a negative count"),
        (_set("waiting_row", 0, 10**6), "devices.waiting: a row not in devices"),
        (lambda c: c.update(lat=c["lat"][1:]), "devices.lat has not 12 entries"),
        (lambda c: c.update(waiting_row=c["waiting_row"][1:]), "times and rows differ in count"),
        (
            lambda c: c.update(gap_ms=c["gap_ms"].astype("<i2")[:3]),
            "devices.gap_ms: 6 bytes, not a whole number of 8-byte values",
        ),
        (lambda c: c.update(lon="not base64!"), "devices.lon: "),
    ],
)
def test_a_corrupt_device_column_is_refused_and_changes_nothing(
    engine_with: Callable[[RuleSet], Engine],
    health_rules: RuleSet,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    source = engine_with(health_rules)
    feed_without_flush(source, _day(4)[:900], 50)
    doc = orjson.loads(source.snapshot())
    devices = doc["devices"]
    assert len(devices["ids"]) == 12 and devices["waiting_t"]
    columns = {
        name: np.frombuffer(base64.b64decode(devices[name]), dtype)
        for name, dtype in DEVICE_COLUMNS.items()
    }
    change(columns)
    for name, column in columns.items():
        is_text = isinstance(column, str)
        devices[name] = column if is_text else base64.b64encode(column.tobytes()).decode()
    target = engine_with(health_rules)
    feed_without_flush(target, _day(5)[:300], 50)
    before = target.snapshot()
    with pytest.raises(StateError, match=message):
        target.restore(orjson.dumps(doc))
    assert target.snapshot() == before


def feed_without_flush(engine: Engine, records: list[dict[str, Any]], batch: int) -> list[Event]:
    events: list[Event] = []
    for i in range(0, len(records), batch):
        events += engine.process(DETECTIONS.validate_python(records[i : i + batch]))
    return events


def test_incident_events_are_unchanged_by_device_health(
    engine_with: Callable[[RuleSet], Engine], health_rules: RuleSet
) -> None:
    records = _day(5) + [camera("fire-cam", 300 + m, 0.9, east_km=1.0) for m in range(0, 60, 5)]
    records.sort(key=lambda r: r["observed_at"])
    on = [e for e in feed(engine_with(health_rules), records) if isinstance(e, IncidentEvent)]
    off_rules = health_rules.model_copy(update={"devices": DeviceRules()})
    off = [e for e in feed(engine_with(off_rules), records) if isinstance(e, IncidentEvent)]
    assert on and [e.model_dump_json() for e in on] == [e.model_dump_json() for e in off]
    assert place()["lat"] > 0  # the builders' reference point is the test grid's


def test_a_camera_is_judged_where_it_stands_not_where_its_smoke_is(
    tmp_path: Path, health_rules: RuleSet
) -> None:
    """Two districts, west (columns 0-4) and east (5-9): tower k stands in the west and sees smoke
    in the east; tower out stands outside the grid. k is one device, of the west, judged by its
    records located there (a stream worker's west engine sees no others); out is no device."""
    from tests.engine_fixtures import write_grid

    grid = load_grid(write_grid(tmp_path / "two.geojson", west_east=True))
    engine = Engine(grid, load_index(grid, None), health_rules)
    k_home = place(east_km=-2.0)  # column 3: west
    out_home = {"lat": 28.85, "lon": 118.70}  # south-west of the grid
    records = []
    for m in every(30, 6 * HOUR):
        records.append(reading("far-east", m, east_km=3.0))  # keeps event time going
        if m < 2 * HOUR:  # its status, at home, until 02:00
            records.append(camera("k", m, 0.02, east_km=-2.0) | _standing(k_home))
        if m < 4 * HOUR:  # smoke in the east until 04:00
            smoke = camera("k", m + 1, 0.6, east_km=2.0)  # an estimate in column 7: east
            records.append(smoke | _standing(k_home) | {"bearing_deg": 90.0})
            records.append(camera("out", m, 0.6, east_km=-4.0) | _standing(out_home))
    records.sort(key=lambda r: r["observed_at"])
    events = device_events(feed(engine, records))
    about_k = [(e.event, e.district, e.last_heard) for e in events if e.device_id == "k"]
    last_status = T0 + timedelta(minutes=90)
    assert about_k == [(NEW, "west", None), (DOWN, "west", last_status)]
    assert not [e for e in events if e.device_id == "out"]


def _standing(spot: dict[str, float]) -> dict[str, float]:
    return {"camera_lat": spot["lat"], "camera_lon": spot["lon"]}
