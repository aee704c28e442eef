"""Regions: a fire on a district boundary is one incident per district (incidents.region_level)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firewatch.engine.core import Engine
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.model import EventKind
from firewatch.rules import RuleSet

from ..engine_fixtures import write_grid
from .conftest import camera, run, sensor

WEST = -0.8  # km east of the probe point: column 4, district `west`
EAST = 0.3  # column 5, district `east`; the two are 1.1 km apart


def _engine(tmp_path: Path, rules: RuleSet, level: str | None) -> Engine:
    grid = load_grid(write_grid(tmp_path / "two-districts.geojson", west_east=True))
    incidents = rules.incidents.model_copy(update={"region_level": level})
    return Engine(grid, load_index(grid, None), rules.model_copy(update={"incidents": incidents}))


@pytest.mark.parametrize(("level", "incidents"), [("district", 2), (None, 1)])
def test_a_fire_across_a_district_boundary(
    tmp_path: Path, rules: RuleSet, level: str | None, incidents: int
) -> None:
    events = run(
        _engine(tmp_path, rules, level),
        [camera("cam-w", 0, 0.9, east_km=WEST), camera("cam-e", 3, 0.9, east_km=EAST)],
    )
    opened = [e for e in events if e.event is EventKind.OPENED]
    assert len(opened) == incidents
    assert {e.district for e in opened} == ({"west", "east"} if level else {"west"})


@pytest.mark.parametrize(("level", "incidents"), [("district", 0), (None, 1)])
def test_no_corroboration_across_a_district_boundary(
    tmp_path: Path, rules: RuleSet, level: str | None, incidents: int
) -> None:
    events = run(
        _engine(tmp_path, rules, level),
        [camera("cam-w", 0, 0.6, east_km=WEST), sensor("s-e", 5, east_km=EAST)],
    )
    assert [e.event for e in events].count(EventKind.OPENED) == incidents


def test_the_shipped_rules_keep_incidents_within_a_district(rules: RuleSet) -> None:
    assert rules.incidents.region_level == "district"
