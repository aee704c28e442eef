"""Synthetic forest grids for the benchmarks: seeded, so every run measures the same cells.

The default area (2.5 x 2 degrees at 118.5E 28.5N, around Quzhou) keeps the coordinates at real
lon/lat magnitudes, which sets the locate index's ambiguity distance as it is in production.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from numpy.typing import NDArray

from firewatch.geo import Grid, make_grid

AREA = (118.5, 28.5, 121.0, 30.5)  # minx, miny, maxx, maxy in degrees


def voronoi_cells(
    n: int, seed: int = 0, area: tuple[float, float, float, float] = AREA
) -> NDArray[np.object_]:
    """Voronoi cells of `n` uniformly random seeds, clipped to `area`: irregular, 5-8 sides."""
    minx, miny, maxx, maxy = area
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(rng.uniform((minx, miny), (maxx, maxy), (n, 2)))
    frame = shapely.box(*area)
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    clipped: NDArray[np.object_] = shapely.intersection(cells, frame)
    return clipped


def square_cells(n: int, area: tuple[float, float, float, float] = AREA) -> NDArray[np.object_]:
    """About `n` equal rectangles tiling `area` (exactly n when n fits the area's aspect)."""
    minx, miny, maxx, maxy = area
    cols = round(math.sqrt(n * (maxx - minx) / (maxy - miny)))
    rows = math.ceil(n / cols)
    xs = np.linspace(minx, maxx, cols + 1)
    ys = np.linspace(miny, maxy, rows + 1)
    i, j = np.meshgrid(np.arange(cols), np.arange(rows))
    i, j = i.ravel(), j.ravel()
    boxes: NDArray[np.object_] = shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1])
    return boxes


def voronoi_grid(n: int = 50_000, seed: int = 0) -> Grid:
    return make_grid(voronoi_cells(n, seed))


def square_grid(n: int = 50_000) -> Grid:
    return make_grid(square_cells(n))
