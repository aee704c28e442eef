"""`firewatch replay` end to end: real FIRMS data, the simulated stream, idempotency, the CLI."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from firewatch.cli import main
from firewatch.clock import SystemClock
from firewatch.engine.incidents import distance_km
from firewatch.geo.grid import GridSchema, load_grid
from firewatch.model import Outcome
from firewatch.replay import ReplaySummary, replay
from firewatch.runtime import open_engine
from firewatch.settings import Settings
from firewatch.simulate import write_stream

ROOT = Path(__file__).resolve().parents[1]
FIRMS = ROOT / "data/firms/modis_c6_usa_24h_2020-10-01.csv"
CALIFORNIA = ROOT / "data/polygons/usfs_ranger_districts_california.geojson"
CALIFORNIA_SCHEMA = ROOT / "data/grids/california.yaml"
QUJIANG = ROOT / "data/grids/qujiang.geojson"


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings.model_validate({"rules": ROOT / "rules", "cache_dir": tmp_path / "cache", **kw})


def test_california_firms_located_exactly_where_shapely_puts_them(tmp_path: Path) -> None:
    with FIRMS.open() as f:
        rows = list(csv.DictReader(f))
    lon = np.array([float(r["longitude"]) for r in rows])
    lat = np.array([float(r["latitude"]) for r in rows])
    grid = load_grid(CALIFORNIA, GridSchema.from_yaml(CALIFORNIA_SCHEMA))
    hits, _ = shapely.STRtree(grid.geoms).query(shapely.points(lon, lat), predicate="intersects")
    inside = len(np.unique(hits))

    engine = open_engine(_settings(tmp_path, grid=CALIFORNIA, grid_schema=CALIFORNIA_SCHEMA))
    summary = replay(engine, [FIRMS], tmp_path / "events.jsonl")
    outcomes = summary.stats["outcomes"]
    assert (inside, len(rows) - inside) == (783, 1792)  # the figures the data's README gives
    assert summary.stats["records"] == len(rows)
    assert outcomes[Outcome.OUTSIDE] == len(rows) - inside
    assert len(rows) - outcomes[Outcome.OUTSIDE] - outcomes[Outcome.REJECTED] == inside
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events and all(e["grid_id"] in {c.id for c in grid.cells} for e in events)
    assert summary.stats["events"]["opened"] == len({e["incident_id"] for e in events})


def test_replaying_the_same_input_twice_is_byte_identical(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, QUJIANG, seed=3, hours=6)
    outputs = []
    for n in (1, 2):
        engine = open_engine(_settings(tmp_path, grid=QUJIANG))
        out, rejects = tmp_path / f"events{n}.jsonl", tmp_path / f"rejects{n}.jsonl"
        replay(engine, [stream], out, rejects, batch_size=1000 * n)  # batching must not matter
        outputs.append((out.read_bytes(), rejects.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count(b'"event":"opened"') >= 1


def test_simulated_stream_opens_one_incident_per_fire_and_none_for_noise(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    sim = write_stream(stream, QUJIANG, seed=1, hours=24)
    engine = open_engine(_settings(tmp_path, grid=QUJIANG))
    out = tmp_path / "events.jsonl"
    summary = replay(engine, [stream], out, tmp_path / "rejects.jsonl")
    events = [json.loads(line) for line in out.read_text().splitlines()]
    opened = [e for e in events if e["event"] == "opened"]
    assert len(opened) == len(sim.fires)
    # each incident starts at a detection near its fire: within the merge radius plus a pixel
    nearest = [
        min(sim.fires, key=lambda f: distance_km(e["lat"], e["lon"], f.lat, f.lon)) for e in opened
    ]
    assert sorted(f.name for f in nearest) == sorted(f.name for f in sim.fires)
    assert all(
        distance_km(e["lat"], e["lon"], f.lat, f.lon) < 3.0
        for e, f in zip(opened, nearest, strict=True)
    )
    assert all(e["team"] for e in opened)
    assert summary.stats["outcomes"][Outcome.REJECTED] == len(sim.malformed)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in rejects) == sorted(m.line for m in sim.malformed)


def test_replay_command_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "replay",
            str(FIRMS),
            "--grid",
            str(CALIFORNIA),
            "--grid-schema",
            str(CALIFORNIA_SCHEMA),
            "--rules",
            str(ROOT / "rules"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "events.jsonl"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "records read           2,575" in out
    assert "located                  783" in out
    assert "outside                1,792" in out
    assert "records/s" in out


def test_replay_command_names_a_missing_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "e.jsonl")])
    assert code == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_grid_build_and_simulate_commands_reproduce_the_shipped_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "qujiang.geojson"
    boundary = ROOT / "data/polygons/quzhou_counties.geojson"
    assert main(["grid", "build", str(boundary), "--district", "衢江区", "--out", str(out)]) == 0
    assert out.read_bytes() == QUJIANG.read_bytes()
    stream_a, stream_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for stream in (stream_a, stream_b):
        args = ["simulate", "--grid", str(out), "--hours", "2", "--out", str(stream)]
        assert main(args) == 0
    assert stream_a.read_bytes() == stream_b.read_bytes()
    assert "malformed" in capsys.readouterr().out


def test_grid_check_command_reports_repairs_and_overlaps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["grid", "check", str(CALIFORNIA), "--schema", str(CALIFORNIA_SCHEMA)]) == 0
    out = capsys.readouterr().out
    assert "repaired: usfs_ranger_districts_california.geojson feature 30" in out
    assert "overlap:" in out and "first in file order wins" in out


# -- a device clock that is wrong ---------------------------------------------------------------
# The simulated seed-5 day (5 fires) and what a broken device clock does to it. Regression: one
# ordinary sensor reading from 2099 a third of the way through made replay open 1 incident
# instead of 5 and count 378 fire signals stale.
SEED5_END = datetime(2026, 4, 5, tzinfo=timezone(timedelta(hours=8)))  # START + 24 h
AFTER_SEED5 = SEED5_END + timedelta(hours=1)  # `now` of a replay after the day was recorded
WEEK_BEHIND = "S-0094"  # a sensor near fire F1, whose over-threshold readings are signals


@dataclass
class Seed5:
    clean: Path
    ahead: Path  # with the 2099 reading inserted
    ahead_line: int  # its line number
    behind: Path  # WEEK_BEHIND's readings observed 7 days early
    without: Path  # without WEEK_BEHIND's readings (blank lines in their place)
    behind_signals: int  # WEEK_BEHIND's over-threshold readings (lines)


def _records_of(lines: list[bytes], device: str) -> dict[int, dict[str, Any]]:
    """Index -> record of the lines that are JSON objects of `device` with a valid time."""
    out = {}
    for i, line in enumerate(lines):
        try:
            r = json.loads(line)
            if isinstance(r, dict) and r.get("device_id") == device:
                datetime.fromisoformat(r["observed_at"])
                out[i] = r
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def seed5(tmp_path_factory: pytest.TempPathFactory) -> Seed5:
    tmp = tmp_path_factory.mktemp("seed5")
    sim = write_stream(tmp / "clean.jsonl", QUJIANG, seed=5, hours=24)
    assert len(sim.fires) == 5
    lines = (tmp / "clean.jsonl").read_bytes().splitlines()
    third = len(lines) // 3
    device = next(r for r in map(json.loads, lines[third:]) if r.get("source") == "sensor")
    reading = {
        "id": "broken-clock-2099",
        "source": "sensor",
        "device_id": device["device_id"],
        "observed_at": "2099-01-01T00:00:00+00:00",
        "lat": device["lat"],
        "lon": device["lon"],
        "readings": {"temperature_c": 18.5, "co_ppm": 1.2, "humidity_pct": 60.0},
    }
    ahead = [*lines[:third], json.dumps(reading).encode(), *lines[third:]]

    mine = _records_of(lines, WEEK_BEHIND)
    behind = list(lines)
    for i, r in mine.items():
        early = datetime.fromisoformat(r["observed_at"]) - timedelta(days=7)
        behind[i] = json.dumps(r | {"observed_at": early.isoformat()}).encode()
    signals = [
        i
        for i, r in mine.items()
        if r["readings"]["temperature_c"] >= 60 or r["readings"]["co_ppm"] >= 50
    ]
    assert min(signals) >= 5000  # none in the first batch, which no watermark precedes
    return Seed5(
        clean=tmp / "clean.jsonl",
        ahead=_write(tmp / "ahead.jsonl", ahead),
        ahead_line=third + 1,
        behind=_write(tmp / "behind.jsonl", behind),
        # blank lines in their place: the same batches, and a blank line is no record
        without=_write(
            tmp / "without.jsonl", [b"" if i in mine else x for i, x in enumerate(lines)]
        ),
        behind_signals=len(signals),
    )


def _replay(tmp_path: Path, stream: Path, now: datetime | None) -> tuple[ReplaySummary, bytes]:
    engine = open_engine(_settings(tmp_path, grid=QUJIANG))
    out = tmp_path / f"{stream.stem}-events.jsonl"
    summary = replay(engine, [stream], out, tmp_path / f"{stream.stem}-rejects.jsonl", now=now)
    return summary, out.read_bytes()


def test_one_reading_from_2099_changes_nothing_but_its_own_reject(
    seed5: Seed5, tmp_path: Path
) -> None:
    clean, clean_events = _replay(tmp_path, seed5.clean, AFTER_SEED5)
    ahead, ahead_events = _replay(tmp_path, seed5.ahead, AFTER_SEED5)

    assert clean.stats["events"]["opened"] == 5
    assert ahead_events == clean_events  # the same incidents and events, byte for byte
    assert ahead.stats["rejected"]["future_timestamp"] == 1
    assert "future_timestamp" not in clean.stats["rejected"]
    assert ahead.stats["outcomes"] == clean.stats["outcomes"] | {
        "rejected": clean.stats["outcomes"]["rejected"] + 1
    }
    assert ahead.stats["outcomes"][Outcome.STALE] == 0
    rejects = [json.loads(x) for x in (tmp_path / "ahead-rejects.jsonl").read_text().splitlines()]
    (future,) = [r for r in rejects if r["reason"] == "future_timestamp"]
    assert (future["line"], future["field"]) == (seed5.ahead_line, "observed_at")
    assert "2099-01-01T00:00:00+00:00" in future["message"]
    assert "2026-04-05T01:05:00+08:00" in future["message"]  # now + max_future

    # the regression, as it was: without a clock to check against, the one reading silences
    # the rest of the day
    unchecked, _ = _replay(tmp_path, seed5.ahead, None)
    assert unchecked.stats["events"]["opened"] == 1
    assert unchecked.stats["outcomes"][Outcome.STALE] == _fire_signals_after(seed5, tmp_path)


def _fire_signals_after(seed5: Seed5, tmp_path: Path) -> int:
    """The fire signals (suspect, incident, duplicate or stale: each such line is one of them) of
    the clean day's lines after where the 2099 reading goes, as a clean engine counts them."""
    engine = open_engine(_settings(tmp_path, grid=QUJIANG))
    lines = seed5.clean.read_bytes().splitlines()
    at = seed5.ahead_line - 1
    signals = (Outcome.SUSPECT, Outcome.INCIDENT, Outcome.DUPLICATE, Outcome.STALE)
    engine.process_lines(lines[:at], "prefix")
    before = sum(engine.stats.outcomes[o] for o in signals)
    engine.process_lines(lines[at:], "rest")
    return sum(engine.stats.outcomes[o] for o in signals) - before


def test_a_device_a_week_behind_is_stale_and_changes_nothing_else(
    seed5: Seed5, tmp_path: Path
) -> None:
    """A fire signal older than the watermark by more than the inactivity window (24 h) is
    counted stale and dropped; one later than the grace period but within that window would be
    `late` and still processed. A week behind, each over-threshold reading of the device is
    stale (its normal readings, no fire signal, are counted as such), and the incidents are
    those of the day without the device."""
    behind, behind_events = _replay(tmp_path, seed5.behind, AFTER_SEED5)
    without, without_events = _replay(tmp_path, seed5.without, AFTER_SEED5)

    assert behind_events == without_events
    assert without.stats["events"]["opened"] == 5
    assert without.stats["outcomes"][Outcome.STALE] == 0
    readings = behind.stats["records"] - without.stats["records"]  # the device's
    assert readings > seed5.behind_signals > 0
    assert behind.stats["outcomes"] == without.stats["outcomes"] | {
        Outcome.STALE: seed5.behind_signals,
        Outcome.IGNORED: without.stats["outcomes"][Outcome.IGNORED]
        + readings
        - seed5.behind_signals,
    }
    assert behind.stats["late"] == without.stats["late"]
    assert behind.stats["rejected"] == without.stats["rejected"]  # a week behind is no error


def test_replay_command_takes_now_and_says_what_it_rejected_as_future(
    seed5: Seed5, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "replay",
        str(seed5.ahead),
        *("--grid", str(QUJIANG), "--rules", str(ROOT / "rules")),
        *("--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "events.jsonl")),
    ]
    assert main([*args, "--now", "2026-04-05T02:00:00+09:00"]) == 0  # 2026-04-05T01:00+08:00
    out = capsys.readouterr().out
    assert "at 2026-04-05T02:00:00+09:00" in out
    assert "future_timestamp 1" in out
    assert "in the future            1  (future_timestamp: observed after " in out
    assert "2026-04-05T02:05:00+09:00, now + sources.max_future" in out
    assert "replay it with --now" in out
    assert "incidents opened           5" in out

    # --now before the day ends: what was recorded after it (and + 5 min) is rejected
    assert main([*args, "--now", "2026-04-04T12:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "incidents opened           5" not in out
    assert "observed after 2026-04-04T12:05:00+08:00" in out


def test_replay_command_reads_the_clock_only_when_not_given_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_text(
        json.dumps(
            {
                "source": "camera",
                "device_id": "cam",
                "observed_at": "2026-11-28T12:10:00+00:00",
                "lat": 28.95,
                "lon": 118.87,
                "confidence": 0.9,
                "label": "smoke",
            }
        )
        + "\n"
    )
    monkeypatch.setattr(SystemClock, "now", lambda self: datetime(2026, 11, 28, 12, tzinfo=UTC))
    args = ["replay", str(stream), "--rules", str(ROOT / "rules"), "--grid", str(QUJIANG)]
    args += ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "events.jsonl")]
    assert main(args) == 0  # 10 min after the clock: beyond max_future
    assert "future_timestamp 1" in capsys.readouterr().out
    assert main([*args, "--now", "2026-11-28T12:06:00Z"]) == 0  # within it
    assert "future_timestamp" not in capsys.readouterr().out


@pytest.mark.parametrize("now", ["2026-04-05T01:00:00", "yesterday", "2026-04-05"])
def test_replay_command_wants_now_with_an_offset(
    now: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "x.jsonl", "--out", str(tmp_path / "e.jsonl"), "--now", now])
    assert exit_.value.code == 2
    assert "RFC 3339 time with a UTC offset" in capsys.readouterr().err
