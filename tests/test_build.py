"""The demo forest grid: 1 km cells over Qujiang with a synthetic township, village and team."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from firewatch.errors import GridError
from firewatch.sim.demo_grid import build_grid, grid_build_main, write_grid
from firewatch.sim.hierarchy import shared_borders

ROOT = Path(__file__).resolve().parents[1]
BOUNDARY = ROOT / "data" / "polygons" / "quzhou_counties.geojson"
COMMITTED = ROOT / "data" / "grids" / "qujiang.geojson"
PROPERTIES = {
    "id",
    "name",
    "district",
    "township",
    "township_name",
    "village",
    "village_name",
    "team",
    "risk",
}


@pytest.fixture(scope="module")
def grid() -> dict[str, Any]:
    return build_grid(BOUNDARY, "衢江区", cell_km=1.0, seed=7)


def km2(geom: Any, lat0: float = 28.93) -> float:
    return float(geom.area) * 110.574 * 111.320 * math.cos(math.radians(lat0))


def cells(fc: dict[str, Any]) -> list[Any]:
    return [shape(f["geometry"]) for f in fc["features"]]


def props(fc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f["properties"] for f in fc["features"]]


def qujiang() -> Any:
    features = json.loads(BOUNDARY.read_bytes())["features"]
    return next(shape(f["geometry"]) for f in features if f["properties"]["adcode"] == 330803)


def test_same_arguments_give_the_same_bytes_as_the_committed_grid(
    tmp_path: Path, grid: dict[str, Any]
) -> None:
    write_grid(grid, tmp_path / "a.geojson")
    write_grid(build_grid(BOUNDARY, "衢江区", cell_km=1.0, seed=7), tmp_path / "b.geojson")
    data = (tmp_path / "a.geojson").read_bytes()
    assert data == (tmp_path / "b.geojson").read_bytes()
    assert data.endswith(b"\n") and "衢江区".encode() in data  # ensure_ascii=False
    assert data == COMMITTED.read_bytes(), "regenerate data/grids/qujiang.geojson"
    assert len(data) < 3_000_000


def test_another_seed_changes_the_hierarchy_not_the_cells(grid: dict[str, Any]) -> None:
    other = build_grid(BOUNDARY, "衢江区", cell_km=1.0, seed=8)
    assert [f["geometry"] for f in other["features"]] == [f["geometry"] for f in grid["features"]]
    assert [p["id"] for p in props(other)] == [p["id"] for p in props(grid)]
    assert [p["village"] for p in props(other)] != [p["village"] for p in props(grid)]


def test_district_by_adcode_is_the_same_grid(grid: dict[str, Any]) -> None:
    assert build_grid(BOUNDARY, "330803")["features"] == grid["features"]


def test_cells_cover_the_district_without_gaps_or_overlaps(grid: dict[str, Any]) -> None:
    geoms = cells(grid)
    union = shapely.union_all(geoms)
    district = qujiang()
    assert abs(union.area - district.area) / district.area < 0.005
    assert union.symmetric_difference(district).area / district.area < 0.005
    assert abs(sum(g.area for g in geoms) - union.area) / union.area < 1e-6  # no overlaps
    assert 1_700 <= len(geoms) <= 1_900  # Qujiang is about 1,750 km2


def test_every_cell_is_valid_and_has_every_property(grid: dict[str, Any]) -> None:
    geoms = cells(grid)
    assert all(shapely.is_valid(geoms))
    assert all(g.geom_type in ("Polygon", "MultiPolygon") for g in geoms)
    for p in props(grid):
        assert set(p) == PROPERTIES
        assert re.fullmatch(r"QJ-r\d{3}c\d{3}", p["id"])
        assert re.fullmatch(r"T\d\d-V\d\d", p["village"])
        assert p["district"] == "衢江区" and p["risk"] in ("low", "medium", "high")
        assert p["name"].startswith(p["village_name"] + " cell ")
    assert len({p["id"] for p in props(grid)}) == len(geoms)
    for f in grid["features"]:
        flat = json.dumps(f["geometry"]["coordinates"])
        assert not re.search(r"\.\d{7,}", flat), "coordinates are rounded to 6 decimals"


def test_villages_sit_in_one_township_with_one_team(grid: dict[str, Any]) -> None:
    township_of: dict[str, set[str]] = defaultdict(set)
    team_of: dict[str, set[str]] = defaultdict(set)
    for p in props(grid):
        township_of[p["village"]].add(p["township"])
        team_of[p["village"]].add(p["team"])
    assert all(len(t) == 1 for t in township_of.values())
    assert all(team == {f"team-{v}"} for v, team in team_of.items())
    assert len({p["township"] for p in props(grid)}) == 18
    assert 8 <= len(grid["features"]) / len(township_of) <= 16  # about 12 cells a village


def test_villages_and_townships_are_contiguous(grid: dict[str, Any]) -> None:
    borders = shared_borders(shapely.from_geojson([json.dumps(f) for f in grid["features"]]))
    for key in ("village", "township"):
        labels = [p[key] for p in props(grid)]
        for label in set(labels):
            members = {i for i, lab in enumerate(labels) if lab == label}
            start = min(members)
            seen, todo = {start}, [start]
            while todo:
                for j in borders[todo.pop()]:
                    if j in members and j not in seen:
                        seen.add(j)
                        todo.append(j)
            assert seen == members, f"{key} {label} is in pieces"


def test_no_slivers(grid: dict[str, Any]) -> None:
    assert min(km2(g) for g in cells(grid)) >= 0.2


def test_risk_is_low_in_the_valley_and_high_in_the_hills(grid: dict[str, Any]) -> None:
    lat0 = qujiang().centroid.y
    spread: dict[str, list[float]] = defaultdict(list)
    for p, g in zip(props(grid), cells(grid), strict=True):
        spread[p["risk"]].append(abs(g.centroid.y - lat0))
    mean = {risk: sum(d) / len(d) for risk, d in spread.items()}
    assert mean["low"] < mean["medium"] < mean["high"]


def square_district(tmp_path: Path, width_km: float, height_km: float) -> Path:
    lat0, lon0 = 29.0, 119.0
    dx = width_km / 2 / (111.320 * math.cos(math.radians(lat0)))
    dy = height_km / 2 / 110.574
    ring = [[lon0 - dx, lat0 - dy], [lon0 + dx, lat0 - dy], [lon0 + dx, lat0 + dy],
            [lon0 - dx, lat0 + dy], [lon0 - dx, lat0 - dy]]  # fmt: skip
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Test County", "adcode": 1},
                "geometry": {"type": "MultiPolygon", "coordinates": [[ring]]},
            }
        ],
    }
    path = tmp_path / "square.geojson"
    path.write_text(json.dumps(fc))
    return path


def test_slivers_merge_into_the_neighbour_with_the_longest_border(tmp_path: Path) -> None:
    # 2.2 x 2 km about the centroid: four full cells and four 0.1 km wide slivers east and west.
    fc = build_grid(square_district(tmp_path, 2.2, 2.0), "Test County", townships=2)
    areas = sorted(km2(g, 29.0) for g in cells(fc))
    assert len(areas) == 4
    assert areas == pytest.approx([1.1] * 4, abs=0.01)
    assert [p["id"][:2] for p in props(fc)] == ["TC"] * 4


def test_a_district_smaller_than_a_sliver_is_one_cell(tmp_path: Path) -> None:
    fc = build_grid(square_district(tmp_path, 0.3, 0.3), "Test County")
    assert len(fc["features"]) == 1
    assert km2(cells(fc)[0], 29.0) == pytest.approx(0.09, abs=0.005)


def test_an_unknown_district_names_the_file_and_the_choices() -> None:
    with pytest.raises(GridError, match=r"quzhou_counties.geojson: no district named 'Atlantis'"):
        build_grid(BOUNDARY, "Atlantis")
    with pytest.raises(GridError, match=r"衢江区 \(330803\)"):
        build_grid(BOUNDARY, "Atlantis")


def test_grid_build_main_writes_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "grid" / "qujiang.geojson"
    line = grid_build_main(BOUNDARY, "衢江区", 1.0, 7, out)
    n = len(json.loads(out.read_bytes())["features"])
    assert line.startswith(f"{n} cells of 衢江区") and "18 townships" in line and str(out) in line
