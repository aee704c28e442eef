"""Engine metrics after a known input: counted at the edges from the engine's cumulative stats,
on a registry of the test's own."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from firewatch.cli import main
from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.metrics import EngineMeter, EngineMetrics
from firewatch.model import DETECTIONS, EventKind
from firewatch.replay import replay
from firewatch.rules import RuleSet
from firewatch.runtime import open_engine
from firewatch.settings import Settings

from ..engine.conftest import T0, camera, sensor
from ..engine_fixtures import write_grid

ROOT = Path(__file__).resolve().parents[2]
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"
CALIFORNIA = ROOT / "data/polygons/usfs_ranger_districts_california.geojson"
CALIFORNIA_SCHEMA = ROOT / "data/grids/california.yaml"


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    assert got is not None, f"no sample {name}{labels}"
    return got


def total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def test_california_replay_counts_783_located_and_1792_outside(tmp_path: Path) -> None:
    settings = Settings(
        grid=CALIFORNIA, grid_schema=CALIFORNIA_SCHEMA, rules=ROOT / "rules", cache_dir=None
    )
    registry = CollectorRegistry()
    summary = replay(
        open_engine(settings), [FIRMS], tmp_path / "events.jsonl", metrics=EngineMetrics(registry)
    )
    detections = "firewatch_engine_detections_total"
    # the figures the data's README gives (tests/test_replay.py checks them with shapely)
    assert value(registry, detections, source="satellite", outcome="outside") == 1792
    assert total(registry, "firewatch_engine_located_total") == 783
    assert total(registry, "firewatch_engine_located_total", source="satellite") == 783
    assert total(registry, detections) == 2575  # every record: none rejected
    assert total(registry, "firewatch_ingest_rejects_total") == 0
    outcomes = summary.stats["outcomes"]
    for outcome in ("suspect", "incident", "suppressed", "ignored", "duplicate", "stale"):
        assert total(registry, detections, outcome=outcome) == outcomes[outcome], outcome
    assert value(registry, detections, source="camera", outcome="incident") == 0  # a zero
    # per district: the 9 national forests with hotspots inside, e.g. Shasta-Trinity's 220
    located = "firewatch_engine_located_total"
    assert (
        value(registry, located, source="satellite", district="Shasta-Trinity National Forest")
        == 220
    )
    assert value(registry, located, source="satellite", district="Angeles National Forest") == 3
    assert value(registry, located, source="satellite", district="Lassen National Forest") == 0
    events = summary.stats["events"]
    for kind in EventKind:
        assert (
            total(registry, "firewatch_engine_incident_events_total", event=kind.value)
            == (events[kind.value])
        )
    # the incidents the replay wrote (its raw output), not figures copied from a run
    written = [orjson.loads(line) for line in (tmp_path / "events.jsonl").read_bytes().splitlines()]
    opened = {e["incident_id"] for e in written if e["event"] == "opened"}
    closed = {e["incident_id"] for e in written if e["event"] == "closed"}
    assert events["opened"] == len(opened) > 0 and closed <= opened
    assert value(registry, "firewatch_engine_open_incidents") == summary.open_incidents
    assert summary.open_incidents == len(opened - closed) > 0
    # one batch of 2,575 records: one validate, locate and rules observation; incidents twice
    # (the batch, then the flush); no event latency (recorded input is not live)
    count = "firewatch_engine_batch_duration_seconds_count"
    assert [value(registry, count, stage=s) for s in ("validate", "locate", "rules")] == [1] * 3
    assert value(registry, count, stage="incidents") == 2
    assert total(registry, "firewatch_engine_event_latency_seconds_count") == 0


def test_replay_command_writes_the_metrics_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metrics" / "california.prom"
    code = main(
        [
            *("replay", str(FIRMS), "--grid", str(CALIFORNIA), "--grid-schema"),
            *(str(CALIFORNIA_SCHEMA), "--rules", str(ROOT / "rules"), "--cache-dir"),
            *(str(tmp_path / "cache"), "--out", str(tmp_path / "events.jsonl")),
            *("--metrics-out", str(out)),
        ]
    )
    assert code == 0
    assert f"metrics: {out}" in capsys.readouterr().out
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.read_text())
        for s in family.samples
    }
    key = ("firewatch_engine_detections_total", (("outcome", "outside"), ("source", "satellite")))
    assert samples[key] == 1792
    located = [v for (name, _), v in samples.items() if name == "firewatch_engine_located_total"]
    assert sum(located) == 783
    assert not list(tmp_path.glob("metrics/*.partial"))  # written beside it, then renamed


@pytest.fixture
def two_districts(tmp_path: Path, rules: RuleSet) -> Callable[[], Engine]:
    """Engines on a 10 x 10 grid whose columns 0-4 are district `west`, 5-9 `east`."""
    grid = load_grid(write_grid(tmp_path / "two.geojson", west_east=True))
    index = load_index(grid, None)
    return lambda: Engine(grid, index, rules)


def _batch(*records: dict[str, object]) -> list:  # type: ignore[type-arg]
    return DETECTIONS.validate_python(list(records))


def test_sources_districts_duplicates_and_late_signals_are_counted_per_batch(
    two_districts: Callable[[], Engine],
) -> None:
    registry = CollectorRegistry()
    meter = EngineMeter(EngineMetrics(registry))
    engine = two_districts()
    meter.watch(engine)
    # east: a confident camera (a strong signal) and a normal sensor reading (no fire signal);
    # west: a suspect camera; and a camera far outside the grid
    first = _batch(
        camera("c1", 0, 0.9),
        sensor("s1", 1, temp=20),
        camera("c2", 2, 0.6, east_km=-1),
        {**camera("far", 3, 0.9), "lat": 10.0},
    )
    meter.update(engine, engine.process(first))
    d = "firewatch_engine_detections_total"
    assert value(registry, d, source="camera", outcome="incident") == 1
    assert value(registry, d, source="camera", outcome="suspect") == 1
    assert value(registry, d, source="camera", outcome="outside") == 1
    assert value(registry, d, source="sensor", outcome="ignored") == 1
    located = "firewatch_engine_located_total"
    assert value(registry, located, source="camera", district="east") == 1
    assert value(registry, located, source="camera", district="west") == 1
    assert value(registry, located, source="sensor", district="east") == 1
    assert value(registry, located, source="satellite", district="west") == 0  # from the start
    # the watermark is at minute -7 (the latest event time, 3, less the 10 min grace): the same
    # camera record again (a duplicate), a camera at minute 40, and one at minute -10, before
    # the watermark (late: processed at once, counted as a strong signal too)
    second = _batch(camera("c1", 0, 0.9), camera("c3", 40, 0.9), camera("c4", -10, 0.9))
    meter.update(engine, engine.process(second))
    assert value(registry, d, source="camera", outcome="duplicate") == 1
    assert value(registry, d, source="camera", outcome="incident") == 3
    assert value(registry, "firewatch_engine_late_detections_total", source="camera") == 1
    assert value(registry, located, source="camera", district="east") == 4  # not 1 + 4
    assert value(registry, "firewatch_engine_late_detections_total", source="sensor") == 0


def test_a_restored_engine_counts_only_what_it_does_after_the_restore(
    two_districts: Callable[[], Engine],
) -> None:
    """A worker's region engine resumes from a snapshot whose totals go on: what the snapshot
    counted (in another process, maybe) is not counted again; one forgotten leaves the gauge."""
    before = two_districts()
    before.process(_batch(camera("c1", 0, 0.9), camera("c2", 1, 0.9)))
    registry = CollectorRegistry()
    meter = EngineMeter(EngineMetrics(registry))
    engine = two_districts()
    engine.restore(before.snapshot())
    meter.watch(engine, key="east")
    assert engine.stats.outcomes["incident"] == 2  # the totals continue
    engine.process(_batch(camera("c3", 2, 0.9)))
    meter.update(engine, [], key="east")
    d = "firewatch_engine_detections_total"
    assert value(registry, d, source="camera", outcome="incident") == 1
    other = two_districts()
    meter.watch(other, key="west")
    events = other.process(_batch(camera("w", 0, 0.9, east_km=-1))) + other.flush()
    meter.update(other, events, key="west")
    opened = "firewatch_engine_incident_events_total"
    assert value(registry, opened, event="opened", severity=events[0].severity.value) == 1
    # east's signals still wait for its watermark; west's incident is open after its flush
    assert (len(engine.tracker.open), len(other.tracker.open)) == (0, 1)
    assert value(registry, "firewatch_engine_open_incidents") == 1
    engine.flush()
    meter.update(engine, [], key="east")
    # c1-c3 are at one place: one incident in east, beside west's
    assert value(registry, "firewatch_engine_open_incidents") == 2
    meter.forget("east")
    assert value(registry, "firewatch_engine_open_incidents") == 1


def test_stage_durations_are_the_injected_timer_s_and_latency_the_clock_s(
    two_districts: Callable[[], Engine],
) -> None:
    ticks = itertools.count()
    clock = FakeClock(T0 + timedelta(minutes=25))
    registry = CollectorRegistry()
    meter = EngineMeter(EngineMetrics(registry), clock, timer=lambda: float(next(ticks)))
    engine = two_districts()
    meter.watch(engine)
    # the strong camera at minute 0 opens when the one at minute 15 moves the watermark past it
    events = engine.process(_batch(camera("c1", 0, 0.9), camera("c2", 15, 0.2, north_km=3)))
    meter.update(engine, events)
    s = "firewatch_engine_batch_duration_seconds_sum"
    # every lap of a timer that ticks 1 per call is 1 s: locate and incidents once each, rules
    # twice (the per-record rules when the batch is prepared, the masks after: engine/located.py)
    assert [value(registry, s, stage=x) for x in ("locate", "rules", "incidents")] == [1, 2, 1]
    assert [e.event for e in events] == [EventKind.OPENED]
    # emitted at minute 25 for a detection observed at minute 0
    assert value(registry, "firewatch_engine_event_latency_seconds_sum", event="opened") == 1500
    assert value(registry, "firewatch_engine_event_latency_seconds_count", event="opened") == 1


def test_device_health_is_counted_and_what_is_down_now_is_a_gauge(grid_file: Path) -> None:
    """Two sensors; s1 is silent from 01:00 to 04:00. Mid-silence the gauges say one device down
    and its cell blind; after it, none, and the counter has each kind of event once per kind."""
    from firewatch.rules import load_rules

    grid = load_grid(grid_file)
    engine = Engine(grid, load_index(grid, None), load_rules(ROOT / "rules"))
    registry = CollectorRegistry()
    meter = EngineMeter(EngineMetrics(registry))
    meter.watch(engine)

    def readings(start: int, stop: int) -> list[dict[str, object]]:
        return [
            sensor(dev, m, temp=20.0, co=1.0, east_km=east)
            for m in range(start, stop, 10)
            for dev, east in (("s1", 0.0), ("s2", 3.0))
            if not (dev == "s1" and 60 < m < 240)
        ]

    for i, part in enumerate((readings(0, 180), readings(180, 300))):
        meter.update(engine, engine.process(DETECTIONS.validate_python(part)))
        if i == 0:  # up to 03:00, in the middle of the silence
            assert value(registry, "firewatch_engine_devices_down") == 1
            assert value(registry, "firewatch_engine_cells_blind") == 1
    meter.update(engine, engine.flush())
    assert value(registry, "firewatch_engine_devices_down") == 0
    assert value(registry, "firewatch_engine_cells_blind") == 0
    events = "firewatch_engine_device_events_total"
    assert value(registry, events, event="device_new", source="sensor") == 2
    assert value(registry, events, event="device_down", source="sensor") == 1
    assert value(registry, events, event="device_up", source="sensor") == 1
    assert value(registry, events, event="cell_blind", source="cell") == 1
    assert value(registry, events, event="cell_watched", source="cell") == 1
    assert value(registry, events, event="device_down", source="camera") == 0
