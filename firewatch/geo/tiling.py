"""The raster of the locate index, the cells' edges, and which tiles each edge touches.

Tile (i, j) is the box [X[i], X[i+1]] x [Y[j], Y[j+1]] with X = x0 + arange(nx+1) * tile (and Y
likewise): the build takes every tile border from these float arrays. Its *expanded box* grows
it by `margin` on every side. The query maps a point to ``floor((x - x0) / tile)``, which may
disagree with the arrays by a rounding for a point within about 1e-12 tiles of a border; as
`margin` is a millionth of a tile, every point the query maps to tile (i, j) lies inside the
tile's expanded box, and that is all the index relies on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

_OFFSET = 0.6180339887498949  # of a tile, between the grid bounds and the first tile border
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class IndexParams:
    """Tuning of the locate index; part of the cache key."""

    tiles_per_cell: float = 8.0  # tiles along the side of a mean-sized cell
    min_tiles: int = 1 << 20  # small grids get finer tiles: cheap, and fewer mixed tiles
    max_tiles: int = 16_000_000
    margin: float = 1e-6  # tile expansion, in tiles
    eps: float = 1e-9  # ambiguity distance, times max(1, largest |coordinate|)


@dataclass(frozen=True)
class Tiling:
    x0: float
    y0: float
    tile: float
    nx: int
    ny: int
    margin: float  # absolute
    eps: float  # absolute

    @property
    def xs(self) -> F64:
        """Column borders X[0..nx]."""
        return self.x0 + np.arange(self.nx + 1, dtype=np.float64) * self.tile

    @property
    def ys(self) -> F64:
        return self.y0 + np.arange(self.ny + 1, dtype=np.float64) * self.tile


def plan_tiling(
    bounds: tuple[float, float, float, float], area: float, n_cells: int, params: IndexParams
) -> Tiling:
    """Square tiles of a `tiles_per_cell`-th of a mean cell side or smaller, so that there are
    about `min_tiles` at least, and at most `max_tiles`."""
    minx, miny, maxx, maxy = bounds
    width, height = maxx - minx, maxy - miny
    tile = math.sqrt(area / max(n_cells, 1)) / params.tiles_per_cell
    tile = min(tile, math.sqrt(width * height / params.min_tiles))
    floor = math.sqrt((width + 2 * tile) * (height + 2 * tile) / params.max_tiles)
    tile = max(tile, floor, 1e-9 * max(width, height, 1e-300))
    while (math.ceil(width / tile) + 2) * (math.ceil(height / tile) + 2) > params.max_tiles:
        tile *= 1.01
    # an odd offset keeps tile borders off the round coordinates that grid lines often sit on
    x0, y0 = minx - _OFFSET * tile, miny - _OFFSET * tile
    nx, ny = math.ceil((maxx - x0) / tile + 0.5), math.ceil((maxy - y0) / tile + 0.5)
    magnitude = max(1.0, *(abs(v) for v in bounds))
    margin = max(params.margin * tile, 1024 * math.ulp(magnitude))
    return Tiling(x0, y0, tile, nx, ny, margin, params.eps * magnitude)


@dataclass(frozen=True)
class Edges:
    """Every edge of every ring of every cell, zero-length edges dropped."""

    x1: F64
    y1: F64
    x2: F64
    y2: F64
    cell: I64

    def __len__(self) -> int:
        return len(self.x1)

    @property
    def xmin(self) -> F64:
        return np.minimum(self.x1, self.x2)

    @property
    def xmax(self) -> F64:
        return np.maximum(self.x1, self.x2)

    @property
    def ymin(self) -> F64:
        return np.minimum(self.y1, self.y2)

    @property
    def ymax(self) -> F64:
        return np.maximum(self.y1, self.y2)


def cell_edges(geoms: NDArray[np.object_]) -> Edges:
    parts, part_cell = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same = coord_ring[1:] == coord_ring[:-1]
    x1, y1 = coords[:-1, 0][same], coords[:-1, 1][same]
    x2, y2 = coords[1:, 0][same], coords[1:, 1][same]
    cell = part_cell[ring_part[coord_ring[:-1][same]]].astype(np.int64)
    keep = (x1 != x2) | (y1 != y2)
    return Edges(x1[keep], y1[keep], x2[keep], y2[keep], cell[keep])


def expand(counts: I64) -> tuple[I64, I64]:
    """CSR expansion: for counts [2, 0, 3] -> owners [0, 0, 2, 2, 2], ranks [0, 1, 0, 1, 2]."""
    counts = np.maximum(counts, 0)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(owner), dtype=np.int64) - starts[owner]
    return owner, rank


def edge_tiles(edges: Edges, t: Tiling) -> tuple[I64, I64]:
    """(edge, flat tile) for every tile whose expanded box an edge may touch (a superset).

    Works with twice the margin, so the float rounding of the arithmetic here cannot lose a
    tile the edge really touches.
    """
    m2, inv, xs = 2 * t.margin, 1.0 / t.tile, t.xs
    xmin, xmax = edges.xmin, edges.xmax
    c_lo = np.clip(np.floor((xmin - m2 - t.x0) * inv), 0, t.nx - 1).astype(np.int64)
    c_hi = np.clip(np.floor((xmax + m2 - t.x0) * inv), 0, t.nx - 1).astype(np.int64)
    e, rank = expand(c_hi - c_lo + 1)
    col = c_lo[e] + rank
    x1, y1, x2, y2 = edges.x1[e], edges.y1[e], edges.x2[e], edges.y2[e]
    xa = np.maximum(np.minimum(x1, x2), xs[col] - m2)
    xb = np.minimum(np.maximum(x1, x2), xs[col + 1] + m2)
    vertical = x1 == x2
    slope = np.where(vertical, 0.0, (y2 - y1) / np.where(vertical, 1.0, x2 - x1))
    ya = np.where(vertical, np.minimum(y1, y2), y1 + (xa - x1) * slope)
    yb = np.where(vertical, np.maximum(y1, y2), y1 + (xb - x1) * slope)
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    r_lo = np.clip(np.floor((lo - m2 - t.y0) * inv), 0, t.ny - 1).astype(np.int64)
    r_hi = np.clip(np.floor((hi + m2 - t.y0) * inv), 0, t.ny - 1).astype(np.int64)
    del x1, y1, x2, y2, xa, xb, ya, yb, lo, hi, slope, vertical
    pair, rank = expand(r_hi - r_lo + 1)
    return e[pair], (r_lo[pair] + rank) * t.nx + col[pair]


def centre_cover(edges: Edges, t: Tiling) -> tuple[I64, I64, I64, I64]:
    """Even-odd scanline through the tile centres: runs of centres inside each cell.

    Returns (cell, row, first column, end column) of every run. A centre that no boundary comes
    near is classified exactly (rows by searchsorted, columns by searchsorted on the centre
    coordinates); only centres within rounding of a boundary may be misplaced, and their
    tiles are mixed, where the centre is not used.
    """
    yc = t.y0 + (np.arange(t.ny, dtype=np.float64) + 0.5) * t.tile
    xc = t.x0 + (np.arange(t.nx, dtype=np.float64) + 0.5) * t.tile
    j_lo = np.searchsorted(yc, edges.ymin, side="left")
    j_hi = np.searchsorted(yc, edges.ymax, side="left")  # rows with ymin <= yc < ymax
    e, rank = expand(j_hi - j_lo)
    row = j_lo[e] + rank
    x1, y1, x2, y2 = edges.x1[e], edges.y1[e], edges.x2[e], edges.y2[e]
    xint = x1 + (yc[row] - y1) * (x2 - x1) / (y2 - y1)
    col = np.searchsorted(xc, xint, side="left")  # centres strictly left of the crossing
    cell = edges.cell[e]
    key = np.sort((cell * t.ny + row) * (t.nx + 1) + col)
    col = key % (t.nx + 1)
    group = key // (t.nx + 1)
    start, end = col[0::2], col[1::2]  # crossings pair up within each (cell, row)
    run = end > start
    group = group[0::2][run]
    return group // t.ny, group % t.ny, start[run], end[run]


def runs_over(row: I64, start: I64, end: I64, tiles: I64, nx: int) -> tuple[I64, I64]:
    """(run, tile) for every tile of `tiles` (sorted flat indices) that a run covers."""
    lo = np.searchsorted(tiles, row * nx + start)
    hi = np.searchsorted(tiles, row * nx + end)
    run, rank = expand(hi - lo)
    return run, tiles[lo[run] + rank]
