"""`firewatch replay` end to end: real FIRMS data, the simulated stream, idempotency, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from firewatch.cli import main
from firewatch.engine.incidents import distance_km
from firewatch.geo.grid import GridSchema, load_grid
from firewatch.model import Outcome
from firewatch.replay import replay
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
