"""The simulated Qujiang stream: deterministic, valid where it should be, true to its summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from firewatch.geo.sight import Sight, along_off
from firewatch.model import DETECTIONS
from firewatch.sim.records import BEARING_ERROR_DEG
from firewatch.simulate import START, SimSummary, simulate, simulate_main, write_stream

GRID = Path(__file__).resolve().parents[1] / "data" / "grids" / "qujiang.geojson"


@dataclass
class Run:
    path: Path
    summary: SimSummary
    lines: list[bytes]
    records: dict[int, dict[str, Any]]  # line number -> record, well-formed lines only


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("sim") / "stream.jsonl"
    summary = write_stream(path, GRID, seed=1)
    lines = path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    bad = {m.line for m in summary.malformed}
    records = {i: orjson.loads(line) for i, line in enumerate(lines, 1) if i not in bad}
    return Run(path, summary, lines, records)


def epoch(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["observed_at"]).timestamp()


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return math.hypot(
        (lat1 - lat2) * 110.574, (lon1 - lon2) * 111.320 * math.cos(math.radians(lat1))
    )


def own_position(r: dict[str, Any]) -> bool:
    """A camera record whose lat/lon is where the camera stands (every third tower's)."""
    return (
        r["source"] == "camera" and km(r["lat"], r["lon"], r["camera_lat"], r["camera_lon"]) < 0.05
    )


def about(r: dict[str, Any], lat: float, lon: float, radius_km: float) -> bool:
    """The record is about (lat, lon): within radius_km of it; for a camera that sends its own
    position, its line of sight passes within radius_km (and 4 bearing errors) of it, in its
    range."""
    if r["source"] == "camera" and "bearing_deg" not in r:
        return False  # a tower's clear-view status: about no smoke
    if not own_position(r):
        return km(lat, lon, r["lat"], r["lon"]) <= radius_km
    along, off = along_off(Sight(r["camera_lat"], r["camera_lon"], r["bearing_deg"]), lat, lon)
    return 0 < along <= 9_000 and abs(off) <= radius_km * 1000 + 4 * math.radians(1.0) * along


def fire_signal(r: dict[str, Any]) -> bool:
    """What the default rules treat as a fire signal (suspect or stronger)."""
    if r["source"] == "sensor":
        return r["readings"]["temperature_c"] >= 60 or r["readings"]["co_ppm"] >= 50
    if r["source"] == "camera":
        return bool(r["confidence"] >= 0.5)
    return not r["static"]


def distinct(run: Run) -> list[dict[str, Any]]:
    copies = {d.line for d in run.summary.duplicates}
    return [r for line, r in run.records.items() if line not in copies]


def test_same_arguments_give_the_same_bytes(run: Run, tmp_path: Path) -> None:
    again = write_stream(tmp_path / "again.jsonl", GRID, seed=1)
    assert (tmp_path / "again.jsonl").read_bytes() == run.path.read_bytes()
    assert again == run.summary
    assert b"\n".join(simulate(GRID, seed=1)) + b"\n" == run.path.read_bytes()
    write_stream(tmp_path / "other.jsonl", GRID, seed=2)
    assert (tmp_path / "other.jsonl").read_bytes() != run.path.read_bytes()


def test_counts_match_the_summary(run: Run) -> None:
    s = run.summary
    assert len(run.lines) == s.lines == s.records + len(s.malformed)
    by_source = {"sensor": 0, "camera": 0, "satellite": 0}
    for r in run.records.values():
        by_source[r["source"]] += 1
    assert by_source == s.by_source
    # every sensor, every 10 minutes, for 24 hours, but while it is silent (at most one reading
    # more than a silence's whole 10-minute steps)
    silent = [o for o in s.outages if o.source == "sensor"]
    missing = sum((o.end - o.start).total_seconds() // 600 + 1 for o in silent)
    assert 400 * 144 - missing <= by_source["sensor"] - len(s.duplicates) <= 400 * 144


def test_only_the_malformed_lines_fail_validation(run: Run) -> None:
    bad = {m.line for m in run.summary.malformed}
    assert len(bad) == 10
    for i, line in enumerate(run.lines, 1):
        if i in bad:
            with pytest.raises(ValidationError):
                DETECTIONS.validate_json(b"[" + line + b"]")
        else:
            DETECTIONS.validate_json(b"[" + line + b"]")


def test_ids_are_unique_and_about_one_in_ten_is_missing(run: Run) -> None:
    records = distinct(run)
    ids = [r["id"] for r in records if "id" in r]
    assert len(ids) == len(set(ids))
    assert all(r["id"] == f"{r['device_id']}:{int(epoch(r))}" for r in records if "id" in r)
    assert 0.07 < 1 - len(ids) / len(records) < 0.13


def test_every_fire_is_seen_where_and_when_it_burns(run: Run) -> None:
    records = [r for r in distinct(run) if fire_signal(r)]
    fires = run.summary.fires
    assert [f.kind for f in fires] == ["full", "quiet", "cameras", "full", "remote"]
    for fire in fires:
        near = [
            r
            for r in records
            if about(r, fire.lat, fire.lon, 3.0)
            and fire.start.timestamp() <= epoch(r) <= fire.end.timestamp()
        ]
        seen = {s: sum(r["source"] == s for r in near) for s in ("sensor", "camera", "satellite")}
        assert seen == fire.records, fire.name
        assert {r["device_id"] for r in near if r["source"] == "sensor"} == set(fire.sensors)
        assert {r["device_id"] for r in near if r["source"] == "camera"} == set(fire.cameras)
    assert any(all(f.records.values()) for f in fires), "one fire is seen by all three sources"
    quiet = next(f for f in fires if f.kind == "quiet")
    assert len(quiet.sensors) == 1 and quiet.records["sensor"] >= 2
    assert quiet.records["camera"] == 1 and quiet.records["satellite"] == 0


def test_camera_confidence_rises_from_smoke_to_flame(run: Run) -> None:
    full = next(f for f in run.summary.fires if f.kind == "full")
    camera = full.cameras[0]
    seen = sorted(
        (epoch(r), r["confidence"], r["label"])
        for r in distinct(run)
        if r["device_id"] == camera and about(r, full.lat, full.lon, 3.0)
    )
    assert seen[0][1] < 0.65 and seen[0][2] == "smoke"
    assert seen[-1][1] > 0.85 and seen[-1][2] == "flame"


def test_noise_is_isolated_from_every_other_fire_signal(run: Run) -> None:
    records = [(epoch(r), r) for r in distinct(run) if fire_signal(r)]
    kinds = [n.kind for n in run.summary.noise]
    assert kinds.count("sensor_spike") == 8 and kinds.count("camera_weak") == 10
    assert kinds.count("camera_suspect") == 6 and kinds.count("satellite_low") == 2
    for noise in run.summary.noise:
        t = noise.observed_at.timestamp()
        nearby = [
            r for rt, r in records if abs(rt - t) <= 1800 and about(r, noise.lat, noise.lon, 2.5)
        ]
        expected = 0 if noise.kind == "camera_weak" else 1  # weak hits are no fire signal
        assert len(nearby) == expected, noise
        assert all(r["device_id"] == noise.device_id for r in nearby)


def test_cameras_send_bearings_with_a_realistic_error(run: Run) -> None:
    """Bearings to the smoke with a 1-degree error (sim/records.py); every third tower sends its
    own position, the others a vendor's estimate of the fire's, within 0.5 km."""
    errors, own, estimates = [], 0, 0
    for fire in run.summary.fires:
        cameras = set(fire.cameras)
        for r in distinct(run):
            if r["device_id"] not in cameras or not fire.start.timestamp() <= epoch(r):
                continue
            if not about(r, fire.lat, fire.lon, 0.5) or epoch(r) > fire.end.timestamp():
                continue
            sight = Sight(r["camera_lat"], r["camera_lon"], 0.0)
            north, east = along_off(sight, fire.lat, fire.lon)
            true = math.degrees(math.atan2(east, north)) % 360.0  # along north, off east
            errors.append((r["bearing_deg"] - true + 180.0) % 360.0 - 180.0)
            own += own_position(r)
            estimates += not own_position(r)
    assert len(errors) > 100 and own > 10 and estimates > 10
    mean_abs = sum(map(abs, errors)) / len(errors)
    # a normal error of sigma: mean |error| sigma * sqrt(2 / pi) (0.8 sigma), none past 4.5 sigma
    expected = BEARING_ERROR_DEG * math.sqrt(2 / math.pi)
    assert 0.6 * expected < mean_abs < 1.4 * expected
    assert max(map(abs, errors)) < 4.5 * BEARING_ERROR_DEG


def test_the_static_heat_source_is_seen_by_every_pass(run: Run) -> None:
    site = run.summary.static_site
    static = [r for r in distinct(run) if r["source"] == "satellite" and r["static"]]
    assert len(static) == site.records == 6  # Terra, Aqua and VIIRS, day and night
    assert all(km(site.lat, site.lon, r["lat"], r["lon"]) < 0.3 for r in static)


def test_duplicates_are_exact_copies_arriving_later(run: Run) -> None:
    dups = run.summary.duplicates
    assert 0.003 < len(dups) / run.summary.records < 0.007
    for d in dups:
        assert d.line > d.original_line
        assert run.lines[d.line - 1] == run.lines[d.original_line - 1]


def test_late_records_arrive_as_late_as_declared(run: Run) -> None:
    late = {x.line: x for x in run.summary.late}
    copies = {d.line for d in run.summary.duplicates}
    assert sum(x.beyond_grace for x in late.values()) == 5
    assert 0.01 < len(late) / run.summary.records < 0.03
    end = (START + timedelta(hours=24)).timestamp()
    newest = -math.inf  # the newest observed_at so far: what an event-time engine's watermark sees
    for line, r in sorted(run.records.items()):
        behind = newest - epoch(r)
        if line in late:
            x = late[line]
            assert x.device_id == r["device_id"] and x.observed_at.timestamp() == epoch(r)
            assert behind >= min(x.delay_s, end - epoch(r)) - 60  # nothing comes after the end
            assert (x.delay_s > 600) == x.beyond_grace
            assert 60 <= x.delay_s <= 540 or 1200 <= x.delay_s <= 2400
        elif line not in copies:
            assert behind <= 30.0, f"line {line} is out of order but not declared late"
        newest = max(newest, epoch(r))


def test_a_two_hour_run(tmp_path: Path) -> None:
    out = tmp_path / "short.jsonl"
    assert simulate_main(GRID, out, 3, 2.0, 50, 6, 2).startswith(f"{out}: ")
    summary = write_stream(tmp_path / "again.jsonl", GRID, seed=3, hours=2, sensors=50, cameras=6,
                           fires=2)  # fmt: skip
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()
    bad = {m.line for m in summary.malformed}
    lines = out.read_bytes().splitlines()
    records = [orjson.loads(x) for i, x in enumerate(lines, 1) if i not in bad]
    assert len(records) == summary.records >= 50 * 12
    end = START + timedelta(hours=2)
    assert all(START <= datetime.fromisoformat(r["observed_at"]) < end for r in records)
    assert [f.kind for f in summary.fires] == ["full", "quiet"]
    assert all(f.records["sensor"] + f.records["camera"] > 0 for f in summary.fires)


def test_default_streams_lie_before_any_clock_a_replay_reads(run: Run) -> None:
    """`firewatch replay` takes the clock's time as `now` and rejects what was observed more than
    sources.max_future after it (future_timestamp). The default stream (24 h from START) and the
    demo season (DEMO_DAYS from START) must end before 2026-11-28, when this was written, so that
    they replay whole on any machine whose clock is later; a stream for another time is
    replayed with `--now` (after its end: every record is observed by START + hours)."""
    from firewatch.sim.defaults import DEMO_DAYS

    written = datetime(2026, 11, 28, tzinfo=UTC)
    newest = max(datetime.fromisoformat(r["observed_at"]) for r in run.records.values())
    assert newest <= START + timedelta(hours=24) < written
    assert START + timedelta(days=DEMO_DAYS) < written


def test_silent_devices_send_nothing_and_towers_send_a_status_between_fires(run: Run) -> None:
    outages = run.summary.outages
    causes = {o.cause for o in outages}
    assert causes == {"fault", "power_cut"} and {o.source for o in outages} == {"sensor", "camera"}
    by_device: dict[str, list[float]] = {}
    for r in run.records.values():
        by_device.setdefault(r["device_id"], []).append(epoch(r))
    for o in outages:
        inside = [t for t in by_device[o.device_id] if o.start.timestamp() <= t < o.end.timestamp()]
        assert inside == [], o  # nothing at all while it is silent
        assert any(t >= o.end.timestamp() for t in by_device[o.device_id])  # and back after
    status = [r for r in run.records.values() if r["source"] == "camera" and "bearing_deg" not in r]
    assert len({(r["device_id"], r["observed_at"]) for r in status}) == run.summary.heartbeats > 0
    assert all(r["confidence"] < 0.1 and own_position(r) for r in status)
    # every tower not silent sends one every 30 minutes
    towers = {r["device_id"] for r in status}
    assert len(towers) == 24


def test_the_engine_calls_down_exactly_the_devices_the_simulator_silenced(run: Run) -> None:
    from firewatch.engine.core import Engine
    from firewatch.geo.grid import load_grid
    from firewatch.geo.index import load_index
    from firewatch.model import DeviceEvent, DeviceEventKind
    from firewatch.rules import load_rules

    grid = load_grid(GRID)
    engine = Engine(grid, load_index(grid, None), load_rules(GRID.parents[2] / "rules"))
    out = engine.process_lines(run.lines, str(run.path))
    events = [e for e in out.events + engine.flush() if isinstance(e, DeviceEvent)]
    down = {e.device_id: e for e in events if e.event is DeviceEventKind.DEVICE_DOWN}
    up = {e.device_id: e for e in events if e.event is DeviceEventKind.DEVICE_UP}
    silent = {o.device_id: o for o in run.summary.outages}
    assert len(down) == len([e for e in events if e.event is DeviceEventKind.DEVICE_DOWN])
    assert set(down) == set(up) == set(silent)
    for device, o in silent.items():
        # last heard before the silence; down once its tolerance ran out, after it began
        assert down[device].last_heard < o.start <= down[device].observed_at < o.end
        assert o.end <= up[device].observed_at <= o.end + timedelta(minutes=31)
    # the power cut leaves the cells near its middle watched by nobody, until it is over (and a
    # sensor's fault its own cell, where no tower watches it)
    blind = [e for e in events if e.event is DeviceEventKind.CELL_BLIND]
    cut = next(o for o in run.summary.outages if o.cause == "power_cut")
    assert sum(cut.start <= e.observed_at < cut.end for e in blind) > 10
    assert all(any(o.start <= e.observed_at < o.end for o in silent.values()) for e in blind)
    watched = {e.grid_id for e in events if e.event is DeviceEventKind.CELL_WATCHED}
    assert watched == {e.grid_id for e in blind}
