"""The locate index agrees with shapely, point for point, by the rule of firewatch.geo.grid:
the lowest-index cell among those that `intersects` the point, else -1."""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.affinity
from numpy.typing import NDArray

from firewatch.geo import (
    Grid,
    GridSchema,
    IndexParams,
    LocateIndex,
    cache_key,
    load_grid,
    load_index,
    make_grid,
)

DATA = Path(__file__).parents[2] / "data"
CALIFORNIA = GridSchema(
    id="RANGERDIST",
    name="DISTRICTNA",
    team="FORESTNAME",
    village=None,
    township=None,
    district=None,
    risk=None,
)
# coarse tiles put many edges in a tile; fine ones put tile borders everywhere
PARAMS = [IndexParams(), IndexParams(tiles_per_cell=0.5, min_tiles=1), IndexParams(min_tiles=1)]
Points = tuple[NDArray[np.float64], NDArray[np.float64]]


def shapely_rule(
    geoms: NDArray[np.object_], x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.int64]:
    pairs = shapely.STRtree(geoms).query(shapely.points(x, y), predicate="intersects")
    best = np.full(len(x), len(geoms), dtype=np.int64)
    np.minimum.at(best, pairs[0], pairs[1])
    return np.where(best == len(geoms), -1, best)


def assert_agrees(index: LocateIndex, grid: Grid, points: Points) -> NDArray[np.int32]:
    x, y = points
    got = index.locate(x, y)
    want = shapely_rule(grid.geoms, x, y)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} points differ, e.g. {x[bad[:3]]}, {y[bad[:3]]}"
    return got


def edges(grid: Grid) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rings = shapely.get_rings(shapely.get_parts(grid.geoms))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    return coords[:-1][same], coords[1:][same]


def random_points(grid: Grid, n: int, rng: np.random.Generator, grow: float = 0.05) -> Points:
    minx, miny, maxx, maxy = grid.bounds
    dx, dy = (maxx - minx) * grow, (maxy - miny) * grow
    return rng.uniform(minx - dx, maxx + dx, n), rng.uniform(miny - dy, maxy + dy, n)


def vertices(grid: Grid) -> Points:
    coords = shapely.get_coordinates(grid.geoms)
    return coords[:, 0], coords[:, 1]


def on_edges(grid: Grid, rng: np.random.Generator) -> Points:
    """Midpoints and interpolated points of every edge (on it, or off it by a rounding)."""
    a, b = edges(grid)
    t = rng.uniform(0, 1, (len(a), 1))
    pts = np.vstack([(a + b) / 2, a + (b - a) * t, a + (b - a) * 0.25])
    return pts[:, 0], pts[:, 1]


def near_edges(grid: Grid, index: LocateIndex, rng: np.random.Generator) -> Points:
    """Just beyond the ambiguity distance on either side of every edge: exact crossings only."""
    a, b = edges(grid)
    d = b - a
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.hypot(d[:, 0], d[:, 1])[:, None]
    out = []
    for k in (1.01, 3.0, 30.0):
        side = rng.choice([-1.0, 1.0], (len(a), 1))
        out.append(a + d * rng.uniform(0, 1, (len(a), 1)) + normal * index.tiling.eps * k * side)
    pts = np.vstack(out)
    return pts[:, 0], pts[:, 1]


def level_with_vertices(grid: Grid, index: LocateIndex, rng: np.random.Generator) -> Points:
    """Points at the height of a vertex (rays through vertices), on tile borders and S lines."""
    coords = shapely.get_coordinates(grid.geoms)
    minx, _, maxx, _ = grid.bounds
    n = 20_000
    t = index.tiling
    bx = t.xs[rng.integers(0, len(t.xs), n)]
    by = t.ys[rng.integers(0, len(t.ys), n)]
    x = np.concatenate([rng.uniform(minx, maxx, n), bx, bx + t.margin, rng.uniform(minx, maxx, n)])
    y = np.concatenate([coords[rng.integers(0, len(coords), n), 1], by, by, by - t.margin])
    return x, y


def square_grid() -> Grid:
    return make_grid([shapely.box(i, j, i + 1, j + 1) for j in range(30) for i in range(40)])


def voronoi_grid(n: int, seed: int) -> Grid:
    rng = np.random.default_rng(seed)
    frame = shapely.box(0.0, 0.0, 2.5, 2.0)
    seeds = shapely.multipoints(rng.uniform((0, 0), (2.5, 2.0), (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    return make_grid(shapely.intersection(cells, frame))


def holes_and_overlaps() -> Grid:
    holed = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10)],
        [[(2, 2), (4, 2), (4, 4), (2, 4)], [(6, 6), (8, 6), (7, 8)]],
    )
    return make_grid(
        [
            holed,  # 0: a cell with two holes
            shapely.box(2, 2, 4, 4),  # 1: fills the square hole exactly
            shapely.box(8, 8, 12, 12),  # 2: overlaps 0's corner
            shapely.box(1, 1, 9, 9),  # 3: overlaps 0, 1 and 2, over the triangular hole
            shapely.MultiPolygon([shapely.box(11, 0, 12, 1), shapely.box(12, 1, 13, 2)]),  # 4
        ]
    )


@pytest.fixture(scope="module")
def square() -> Grid:
    return square_grid()


@pytest.fixture(scope="module")
def voronoi() -> Grid:
    return voronoi_grid(600, seed=7)


@pytest.fixture(scope="module")
def california() -> Grid:
    return load_grid(DATA / "polygons" / "usfs_ranger_districts_california.geojson", CALIFORNIA)


@pytest.mark.parametrize("params", PARAMS, ids=["default", "coarse", "per-cell"])
@pytest.mark.parametrize("name", ["square", "voronoi"])
def test_agrees_with_shapely_everywhere(
    name: str, params: IndexParams, request: pytest.FixtureRequest
) -> None:
    grid: Grid = request.getfixturevalue(name)
    rng = np.random.default_rng(1)
    index = LocateIndex.build(grid, params)
    got = assert_agrees(index, grid, random_points(grid, 200_000, rng))
    assert (got >= 0).mean() > 0.75 and (got == -1).any()
    assert index.last.fallback < 10  # random points are almost never within eps of an edge
    assert_agrees(index, grid, vertices(grid))
    assert index.last.fallback == index.last.points  # every vertex is ambiguous
    assert_agrees(index, grid, on_edges(grid, rng))
    assert_agrees(index, grid, near_edges(grid, index, rng))
    assert index.last.fallback <= index.last.points // 1000  # beyond eps: decided by crossings
    assert_agrees(index, grid, level_with_vertices(grid, index, rng))


@pytest.mark.parametrize("params", PARAMS, ids=["default", "coarse", "per-cell"])
def test_holes_fillers_and_overlaps(params: IndexParams) -> None:
    grid = holes_and_overlaps()
    assert grid.overlaps == [(0, 2), (0, 3), (1, 3), (2, 3)]
    index = LocateIndex.build(grid, params)
    rng = np.random.default_rng(2)
    for points in (random_points(grid, 50_000, rng), vertices(grid), on_edges(grid, rng)):
        assert_agrees(index, grid, points)
    x = np.array([3.0, 7.0, 9.0, 0.5, 7.0, 12.0, 2.0, 12.5])
    y = np.array([3.0, 7.0, 9.0, 0.5, 6.0, 1.0, 3.0, 1.5])
    # square hole -> filler; triangular hole -> 3; 0's corner over 2; 0 alone; triangle's edge
    # -> 0 (its boundary); the multipolygon's touching vertex; the hole's edge -> 0; part 2
    assert index.locate(x, y).tolist() == [1, 3, 0, 0, 0, 4, 0, 4]


def random_shapes(n: int, seed: int) -> Grid:
    """Rotated boxes, discs and triangles piled on each other, two duplicates, a ring."""
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(n):
        (x, y), r = rng.uniform(0, 10, 2), rng.uniform(0.2, 2.0)
        kind = rng.integers(0, 3)
        if kind == 0:
            shape = shapely.box(x - r, y - r / 2, x + r, y + r / 2)
        elif kind == 1:
            shape = shapely.Point(x, y).buffer(r, quad_segs=3)
        else:
            shape = shapely.Polygon(np.array([x, y]) + rng.uniform(-r, r, (3, 2)))
        shape = shapely.affinity.rotate(shape, rng.uniform(0, 90))
        if shape.is_valid and shape.area > 0:
            shapes.append(shape)
    shapes += [shapes[5], shapely.Point(5, 5).buffer(3).difference(shapely.Point(5, 5).buffer(1))]
    shapes.insert(3, shapes[10])
    return make_grid(shapes)


@pytest.mark.parametrize("params", PARAMS, ids=["default", "coarse", "per-cell"])
def test_piles_of_overlapping_cells(params: IndexParams) -> None:
    grid = random_shapes(80, seed=5)
    assert len(grid.overlaps) > 200
    # the index finds overlaps itself: it does not need the grid's list
    index = LocateIndex.build(dataclasses.replace(grid, overlaps=[]), params)
    rng = np.random.default_rng(6)
    for points in (random_points(grid, 50_000, rng), vertices(grid), on_edges(grid, rng)):
        assert_agrees(index, grid, points)
    assert_agrees(index, grid, near_edges(grid, index, rng))
    assert_agrees(index, grid, level_with_vertices(grid, index, rng))
    inside = grid.geoms[3].representative_point()  # cell 3 is a copy of cell 11
    assert grid.geoms[3].equals(grid.geoms[11]) and grid.geoms[11].contains(inside)
    (got,) = index.locate(np.array([inside.x]), np.array([inside.y])).tolist()
    assert 0 <= got <= 3


def test_points_outside_and_not_numbers(square: Grid) -> None:
    index = LocateIndex.build(square)
    x = np.array([-1e-9, 40.0 + 1e-9, 5.5, np.nan, np.inf, -np.inf, 1e300, 5.5])
    y = np.array([0.5, 0.5, -1e-12, 0.5, 0.5, 0.5, 0.5, np.nan])
    assert index.locate(x, y).tolist() == [-1] * 8
    assert index.locate(np.array([0.0, 40.0]), np.array([0.0, 30.0])).tolist() == [0, 1199]


@pytest.mark.parametrize("name", ["square", "voronoi"])
def test_one_point_at_a_time_answers_as_a_batch(name: str, request: pytest.FixtureRequest) -> None:
    """A single point takes the raster in Python floats (the engine locates each camera fix
    alone): the same answers as the batch, in pure and mixed tiles, on edges and vertices,
    outside and for what is not a number."""
    grid: Grid = request.getfixturevalue(name)
    index = LocateIndex.build(grid)
    rng = np.random.default_rng(4)
    odd = (
        np.array([-1e-9, 1e300, np.nan, np.inf, -np.inf, 5.5]),
        np.array([0.5, 0.5, 0.5, 0.5, 0.5, np.nan]),
    )
    for x, y in (random_points(grid, 3_000, rng), vertices(grid), on_edges(grid, rng), odd):
        x, y = x[:3_000], y[:3_000]
        batch = index.locate(x, y)
        alone = [int(index.locate(x[k : k + 1], y[k : k + 1])[0]) for k in range(len(x))]
        assert alone == batch.tolist()
    assert (batch == -1).all()  # the odd points


def test_a_grid_of_one_cell() -> None:
    grid = make_grid([shapely.Polygon([(0, 0), (3, 1), (1, 3)])])
    index = LocateIndex.build(grid)
    rng = np.random.default_rng(3)
    for points in (random_points(grid, 50_000, rng, grow=0.5), vertices(grid), on_edges(grid, rng)):
        assert_agrees(index, grid, points)


def test_shapes_are_kept_and_checked(square: Grid) -> None:
    index = LocateIndex.build(square)
    lon, lat = np.full((3, 4), 10.5), np.full((3, 4), 2.5)
    got = index.locate(lon, lat)
    assert got.shape == (3, 4) and got.dtype == np.int32 and (got == 90).all()
    assert index.locate(np.empty(0), np.empty(0)).shape == (0,)
    with pytest.raises(ValueError, match="differ in shape"):
        index.locate(np.zeros(3), np.zeros(4))


def firms_points() -> Points:
    with (DATA / "firms" / "modis_c6_usa_24h_2020-10-01.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    lon = np.array([float(r["longitude"]) for r in rows])
    lat = np.array([float(r["latitude"]) for r in rows])
    return lon, lat


def test_california_districts_and_the_firms_hotspots(california: Grid) -> None:
    index = LocateIndex.build(california)
    lon, lat = firms_points()
    assert len(lon) == 2575
    got = assert_agrees(index, california, (lon, lat))
    assert int((got >= 0).sum()) == 783
    rng = np.random.default_rng(4)
    assert_agrees(index, california, random_points(california, 200_000, rng, grow=0.0))
    assert_agrees(index, california, vertices(california))
    assert_agrees(index, california, on_edges(california, rng))


# --- the cache -----------------------------------------------------------------------------------


def test_the_cache_round_trips(california: Grid, tmp_path: Path) -> None:
    built = load_index(california, tmp_path)
    (path,) = tmp_path.glob("locate-*.npz")
    assert path.name == f"locate-{cache_key(california, IndexParams())}.npz"
    loaded = load_index(california, tmp_path)
    assert loaded is not built
    for name in ("raster", "offsets", "table", "cell"):
        assert np.array_equal(getattr(loaded, name), getattr(built, name))
    assert loaded.tiling == built.tiling
    lon, lat = firms_points()
    assert np.array_equal(loaded.locate(lon, lat), built.locate(lon, lat))


def test_the_cache_key_follows_grid_schema_and_parameters(california: Grid) -> None:
    key = cache_key(california, IndexParams())
    assert cache_key(california, IndexParams(tiles_per_cell=4)) != key
    schema = GridSchema(id="RANGERDIST")
    renamed = Grid(california.path, california.sha256, schema, california.cells, california.geoms)
    assert cache_key(renamed, IndexParams()) != key
    edited = Grid(california.path, "0" * 64, CALIFORNIA, california.cells, california.geoms)
    assert cache_key(edited, IndexParams()) != key


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key", "bad values"])
def test_a_damaged_cache_file_is_rebuilt_not_trusted(
    california: Grid, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    good = load_index(california, tmp_path)
    (path,) = tmp_path.glob("locate-*.npz")
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "other key":
        other = LocateIndex.build(california, IndexParams(tiles_per_cell=2, min_tiles=1))
        other.save(path, "another-key")
    else:
        good.raster[good.raster >= 0] = len(california) + 5  # a cell that does not exist
        good.save(path, cache_key(california, IndexParams()))
    with caplog.at_level(logging.WARNING, logger="firewatch.geo.index"):
        rebuilt = load_index(california, tmp_path)
    assert any(
        str(path) in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records
    )
    fresh = LocateIndex.build(california)
    assert np.array_equal(rebuilt.raster, fresh.raster)
    lon, lat = firms_points()
    assert np.array_equal(rebuilt.locate(lon, lat), fresh.locate(lon, lat))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="firewatch.geo.index"):
        load_index(california, tmp_path)  # the rebuilt file was written back and is good
    assert not caplog.records
