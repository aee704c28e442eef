"""Loading and repairing forest grids: the shipped polygon files, bad files, schemas, nearest."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from firewatch.errors import GridError
from firewatch.geo import Cell, GridSchema, load_grid, make_grid
from firewatch.geo.near import METRES_PER_DEGREE

POLYGONS = Path(__file__).parents[2] / "data" / "polygons"
NONE = {"team": None, "village": None, "township": None, "district": None, "risk": None}
CALIFORNIA = GridSchema(id="RANGERDIST", name="DISTRICTNA", **{**NONE, "team": "FORESTNAME"})
SCHEMAS = {
    "usfs_ranger_districts_california.geojson": (CALIFORNIA, "RANGERDIST", "DISTRICTNA"),
    "australia_states.geojson": (
        GridSchema(id="STATE_CODE", name="STATE_NAME", **NONE),
        "STATE_CODE",
        "STATE_NAME",
    ),
    "australia_nt_localities.geojson": (
        GridSchema(id="lc_ply_pid", name="nt_local_2", **NONE),
        "lc_ply_pid",
        "nt_local_2",
    ),
    "quzhou_counties.geojson": (GridSchema(id="adcode", name="name", **NONE), "adcode", "name"),
}


def raw_features(name: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads((POLYGONS / name).read_text())["features"]
    return features


def rings(feature: dict[str, Any]) -> list[list[list[float]]]:
    geom = feature["geometry"]
    parts = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return [ring for part in parts for ring in part]


def write(tmp_path: Path, doc: Any, name: str = "grid.geojson") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def feature(coords: Any, kind: str = "Polygon", **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": kind, "coordinates": coords},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


SQUARE = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]


# --- the shipped files ---------------------------------------------------------------------------


def test_the_polygon_folder_holds_the_files_these_tests_know() -> None:
    assert sorted(p.name for p in POLYGONS.glob("*.geojson")) == sorted(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_polygon_file_loads_into_valid_cells(name: str) -> None:
    schema, id_key, name_key = SCHEMAS[name]
    grid = load_grid(POLYGONS / name, schema)
    features = raw_features(name)
    assert len(grid) == len(features)
    assert [c.id for c in grid.cells] == [str(f["properties"][id_key]) for f in features]
    assert [c.name for c in grid.cells] == [f["properties"][name_key] for f in features]
    assert [c.index for c in grid.cells] == list(range(len(features)))
    assert grid.cell(3) is grid.cells[3]
    assert shapely.is_valid(grid.geoms).all()
    assert set(shapely.get_type_id(grid.geoms)) <= {3, 6}  # Polygon, MultiPolygon
    assert grid.sha256 == hashlib.sha256((POLYGONS / name).read_bytes()).hexdigest()
    assert grid.bounds == pytest.approx(tuple(shapely.total_bounds(grid.geoms)))


def test_california_reports_make_valid_on_its_self_intersecting_district() -> None:
    name = "usfs_ranger_districts_california.geojson"
    grid = load_grid(POLYGONS / name, CALIFORNIA)
    features = raw_features(name)
    invalid = [i for i, f in enumerate(features) if not shape(f["geometry"]).is_valid]
    assert len(invalid) == 1
    (i,) = invalid
    fixes = [r for r in grid.repairs if r.action == "make_valid"]
    assert [r.feature for r in fixes] == [i]
    text = str(fixes[0])
    assert text.startswith(f"{name} feature {i} (id {features[i]['properties']['RANGERDIST']}): ")
    assert "make_valid: Ring Self-intersection at -121.83342 41.36437" in text
    assert grid.cells[i].team == features[i]["properties"]["FORESTNAME"]
    assert grid.cells[i].village is None


def test_california_reports_exactly_the_districts_whose_interiors_overlap() -> None:
    grid = load_grid(POLYGONS / "usfs_ranger_districts_california.geojson", CALIFORNIA)
    n = len(grid)
    brute = {
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if shapely.relate_pattern(grid.geoms[i], grid.geoms[j], "T********")
    }
    assert brute  # the file is known to have overlapping districts
    assert set(grid.overlaps) == brute
    assert all(shapely.intersection(grid.geoms[i], grid.geoms[j]).area > 0 for i, j in brute)


def test_australian_states_report_the_degenerate_rings_they_drop() -> None:
    name = "australia_states.geojson"
    grid = load_grid(POLYGONS / name, SCHEMAS[name][0])
    features = raw_features(name)
    short = {i: sum(len(r) < 4 for r in rings(f)) for i, f in enumerate(features)}
    expected = {i for i, n in short.items() if n}
    assert len(expected) >= 5
    dropped = {r.feature: r for r in grid.repairs if r.action == "dropped_ring"}
    assert set(dropped) == expected
    for i in expected:
        code = features[i]["properties"]["STATE_CODE"]
        assert str(dropped[i]).startswith(f"{name} feature {i} (id {code}): dropped_ring: ")
        assert f"{short[i]} x: " in dropped[i].detail  # one report per feature, with the count


# --- repairs on small files ----------------------------------------------------------------------


def test_an_unclosed_ring_is_closed_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, collection(feature([[[0, 0], [1, 0], [1, 1]]], id="a")))
    grid = load_grid(path)
    assert [(r.feature, r.cell_id, r.action) for r in grid.repairs] == [(0, "a", "closed_ring")]
    assert grid.geoms[0].area == pytest.approx(0.5)


def test_a_zero_area_part_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    flat = [[[5, 5], [6, 5], [7, 5], [5, 5]]]
    path = write(tmp_path, collection(feature([SQUARE, flat], "MultiPolygon", id="m")))
    grid = load_grid(path)
    assert [r.action for r in grid.repairs] == ["dropped_part"]
    assert grid.geoms[0].equals(shapely.box(0, 0, 1, 1))


def test_a_bow_tie_goes_through_make_valid(tmp_path: Path) -> None:
    bow = [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]
    grid = load_grid(write(tmp_path, collection(feature(bow, id="b"))))
    assert [r.action for r in grid.repairs] == ["make_valid"]
    assert "Self-intersection at 1 1" in grid.repairs[0].detail
    assert grid.geoms[0].is_valid and grid.geoms[0].area == pytest.approx(2.0)


def test_properties_are_strings_or_none(tmp_path: Path) -> None:
    path = write(tmp_path, collection(feature(SQUARE, id=7, name="Zhang", team=None, risk=3.5)))
    cell = load_grid(path).cells[0]
    assert cell == Cell(0, "7", "Zhang", None, None, None, None, "3.5")


def test_without_an_id_property_the_id_falls_back_to_the_feature_index(tmp_path: Path) -> None:
    path = write(tmp_path, collection(feature(SQUARE), feature([[[2, 0], [3, 0], [3, 1], [2, 0]]])))
    grid = load_grid(path, GridSchema(id=None))
    assert [c.id for c in grid.cells] == ["feature-0", "feature-1"]


# --- what cannot be repaired ---------------------------------------------------------------------

BAD_FEATURES: dict[str, tuple[dict[str, Any], str]] = {
    "null geometry": ({"type": "Feature", "properties": {"id": "x"}, "geometry": None}, "null"),
    "a point": (feature([1, 2], "Point", id="x"), "'Point' is not Polygon or MultiPolygon"),
    "strings": (feature([[["0", "0"], ["1", "0"], ["1", "1"], ["0", "0"]]], id="x"), "numbers"),
    "lon 200": (feature([[[0, 0], [200, 0], [1, 1], [0, 0]]], id="x"), "position 1 (200.0, 0.0)"),
    "lat -91": (feature([[[0, 0], [1, -91], [1, 1], [0, 0]]], id="x"), "lat in -90..90"),
    "only short rings": (feature([[[0, 0], [1, 1], [0, 0]]], id="x"), "nothing left after repair"),
    "not a list": (feature("square", id="x"), "not a list"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEATURES))
def test_an_unrepairable_feature_names_the_file_and_the_feature(tmp_path: Path, case: str) -> None:
    bad, words = BAD_FEATURES[case]
    path = write(tmp_path, collection(feature(SQUARE, id="ok"), bad))
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert str(err.value).startswith(f"{path} feature 1 (id x): ")
    assert words in str(err.value)


def test_a_missing_id_names_the_feature_and_the_property(tmp_path: Path) -> None:
    path = write(tmp_path, collection(feature(SQUARE, id="a"), feature(SQUARE, name="no id")))
    with pytest.raises(GridError, match=r"grid.geojson feature 1: no 'id' property"):
        load_grid(path)


def test_duplicate_ids_name_both_features(tmp_path: Path) -> None:
    other = [[[2, 0], [3, 0], [3, 1], [2, 0]]]
    path = write(tmp_path, collection(feature(SQUARE, id="a"), feature(other, id="a")))
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert (
        str(err.value) == f"{path} feature 1 (id a): duplicate cell id, already used by feature 0"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "is not JSON"),
        ('{"type": "Feature", "geometry": null}', "not a GeoJSON FeatureCollection"),
        ("[1, 2]", "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "has no features"),
    ],
)
def test_a_file_that_is_not_a_feature_collection_is_named(
    tmp_path: Path, text: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GridError, match=r"nope\.geojson: cannot read the grid file"):
        load_grid(tmp_path / "nope.geojson")


def test_make_grid_rejects_what_is_not_a_polygon_and_repairs_the_invalid() -> None:
    with pytest.raises(GridError, match=r"<memory> feature 1 \(id feature-1\): .*not a Polygon"):
        make_grid([shapely.box(0, 0, 1, 1), shapely.Point(0, 0)])
    bow = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    grid = make_grid([bow], [Cell(0, "bow")])
    assert str(grid.repairs[0]).startswith("<memory> feature 0 (id bow): make_valid")
    assert grid.geoms[0].area == pytest.approx(2.0)


def test_make_grid_hashes_the_content() -> None:
    a = make_grid([shapely.box(0, 0, 1, 1)])
    assert make_grid([shapely.box(0, 0, 1, 1)]).sha256 == a.sha256
    assert make_grid([shapely.box(0, 0, 1, 2)]).sha256 != a.sha256
    assert make_grid([shapely.box(0, 0, 1, 1)], [Cell(0, "other")]).sha256 != a.sha256


# --- schemas -------------------------------------------------------------------------------------


def test_a_schema_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "usfs.yaml"
    path.write_text("id: RANGERDIST\nname: DISTRICTNA\nteam: FORESTNAME\nvillage: null\n")
    schema = GridSchema.from_yaml(path)
    assert schema == GridSchema(id="RANGERDIST", name="DISTRICTNA", team="FORESTNAME", village=None)
    assert schema.township == "township"


def test_a_schema_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: code\nvilage: VILLAGE\n")
    with pytest.raises(GridError, match=r"bad.yaml: invalid grid schema: vilage: Extra inputs"):
        GridSchema.from_yaml(path)


@pytest.mark.parametrize(("text", "words"), [("- id\n", "must be a mapping"), ("id: [", "YAML")])
def test_a_bad_schema_file_is_named(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    with pytest.raises(GridError, match=f"schema.yaml: .*{words}"):
        GridSchema.from_yaml(path)


# --- nearest_within ------------------------------------------------------------------------------


def metres_east(lat: float, degrees: float) -> float:
    return degrees * math.cos(math.radians(lat)) * METRES_PER_DEGREE


def test_nearest_within_measures_metres_not_degrees() -> None:
    # at 60N a degree of longitude is half a degree of latitude: the east cell is nearer in metres
    east = shapely.box(10.015, 59.9, 10.1, 60.1)
    north = shapely.box(9.9, 60.01, 10.01, 60.1)
    grid = make_grid([north, east])
    d_east = metres_east(60.0, 0.015)
    d_north = 0.01 * METRES_PER_DEGREE
    assert d_east < d_north
    got = grid.nearest_within([10.0, 10.0, 10.0], [60.0, 60.0, 60.0], 0.0)
    assert got.tolist() == [-1, -1, -1]
    assert grid.nearest_within(10.0, 60.0, d_east * 1.001).tolist() == [1]
    assert grid.nearest_within(10.0, 60.0, d_east * 0.999).tolist() == [-1]
    assert grid.nearest_within(10.005, 60.0, d_north * 2).tolist() == [1]


def test_nearest_within_gives_ties_and_insiders_to_the_lowest_index() -> None:
    grid = make_grid([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    lon = np.array([1.5, 0.25, 2.5, np.nan, 50.0])
    lat = np.array([0.5, 0.5, 0.5, 0.0, 0.0])
    reach = metres_east(0.5, 0.5) * 1.001  # (1.5, 0.5) is as far from either cell
    assert grid.nearest_within(lon, lat, reach).tolist() == [0, 0, 1, -1, -1]
    assert grid.nearest_within(lon, lat, reach * 0.99).tolist() == [-1, 0, 1, -1, -1]
    overlapping = [shapely.box(1, 0, 3, 1), shapely.box(0, 0, 2, 1)]
    assert make_grid(overlapping).nearest_within([1.5, 0.5], [0.5, 0.5], 0.0).tolist() == [0, 1]
    with pytest.raises(ValueError, match="metres"):
        grid.nearest_within(lon, lat, -1.0)
