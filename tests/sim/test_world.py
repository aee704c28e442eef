"""Reading the grid: cells made many at a time, and the outline by coverage union, are what
shapely's one-at-a-time `shape` and `union_all` make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from firewatch.sim.hierarchy import cluster_means
from firewatch.sim.world import EDGE_MARGIN_KM, outline_of, read_grid

GRID = Path(__file__).resolve().parents[2] / "data" / "grids" / "qujiang.geojson"


def test_the_cells_are_the_geometries_shape_makes() -> None:
    grid = read_grid(GRID)
    features = json.loads(GRID.read_bytes())["features"]
    assert [shapely.to_wkb(g) for g in grid.geoms] == [
        shapely.to_wkb(shape(f["geometry"])) for f in features
    ]


def test_the_grid_shrunk_by_the_margin_is_the_one_union_all_gives() -> None:
    grid = read_grid(GRID)
    frame = grid.frame
    union = shapely.union_all(shapely.make_valid(grid.geoms))
    outline = shapely.transform(union, lambda c: np.column_stack(frame.to_km(c[:, 0], c[:, 1])))
    inner = outline.buffer(-EDGE_MARGIN_KM)
    assert shapely.normalize(inner).equals_exact(shapely.normalize(grid.inner), 0)


def test_cells_that_overlap_are_no_coverage_and_go_to_union_all() -> None:
    square = shapely.box(0, 0, 1, 1)
    cells = np.array([square, shapely.box(0.5, 0, 1.5, 1)], dtype=object)
    assert outline_of(cells).equals(shapely.box(0, 0, 1.5, 1))
    assert outline_of(np.array([square], dtype=object)).equals(square)


def test_cluster_means_are_the_means_of_each_cluster() -> None:
    rng = np.random.default_rng(2)
    points = rng.normal(0, 30, size=(2000, 2))
    labels = rng.integers(0, 30, size=2000)
    labels[labels == 7] = 8  # one label without points
    means, filled = cluster_means(points, labels, 30)
    assert filled.tolist() == [c != 7 for c in range(30)]
    for c in np.flatnonzero(filled):
        assert means[c].tolist() == points[labels == c].mean(axis=0).tolist()


def test_one_point_is_located_as_many_are_even_on_borders_and_corners() -> None:
    grid = read_grid(GRID)
    rng = np.random.default_rng(4)
    corners = shapely.get_coordinates(grid.geoms)
    x, y = grid.frame.to_km(corners[:, 0], corners[:, 1])  # cells' corners, give or take
    x = np.concatenate([x, rng.uniform(x.min() - 2, x.max() + 2, 3000)])
    y = np.concatenate([y, rng.uniform(y.min() - 2, y.max() + 2, 3000)])
    many = grid.locate_all(x, y)
    assert (many >= 0).sum() > 3000 and (many < 0).sum() > 100
    assert [grid.locate(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)] == [
        None if c < 0 else c for c in many.tolist()
    ]
