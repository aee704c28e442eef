"""The locate index: which grid cell each of a batch of points is in, exactly, in numpy.

The answer for a point is ``min({i : shapely.intersects(geoms[i], point)}, default=-1)``, the
rule of `firewatch.geo.grid`. Two phases, like Tile38's geofences:

1. **Raster.** A uniform raster over the grid bounds (8 tiles along a mean cell side, finer for
   small grids: at least a million tiles; see `IndexParams`).
   A tile is *pure* when no cell boundary touches its box grown by a margin of a millionth of a
   tile; a pure tile's box then lies inside the same cells everywhere, and the raster holds the
   lowest of them (or -1). Mapping a point to its tile is a floor of a product, whose rounding is
   a million times smaller than the margin, so a point looked up in a pure tile is in that box and
   the raster answer is exact. Nearly all points stop here.
2. **Crossings.** A *mixed* tile lists, per candidate cell (sorted by cell index), segments that
   give by even-odd crossings of a rightward horizontal ray whether a point of the tile is in
   the cell (see `firewatch.geo.build` for why they do, exactly, including overlaps and holes).
   For all points in mixed tiles at once, the (point, segment) pairs are expanded with
   np.repeat, each pair is tested (``ay <= py < yhi`` and the side of the point, the sign of a
   cross product), and `np.logical_xor.reduceat` gives the parity per (point, candidate); the
   first candidate with odd parity is the answer.

**Why it is exact.** The half-open height test uses only comparisons of stored floats, so it is
exact. The side test is the sign of a cross product with a unit direction, i.e. a signed
distance to the segment's line, with a rounding error below 1e-13 degrees: where that distance
is more than `eps` (1e-9 times the largest coordinate, about 2 cm on lon/lat, far above the
rounding and far below any real feature), the sign is exact. A point within `eps` of a segment's
line in its tile is *ambiguous* (every point on a cell boundary is) and goes to the fallback,
``STRtree(geoms).query(points, predicate="intersects")`` over all cells, the lowest index
winning: GEOS's own answer. So every point gets either an exact crossing count or GEOS's answer.

`load_index` keeps the arrays in ``cache_dir/locate-<key>.npz`` (np.savez, no pickle); the key
hashes the grid file's sha256, the schema, the index parameters and `INDEX_FORMAT`. A file that
is unreadable, inconsistent or for another key is logged and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import shapely
from numpy.typing import ArrayLike, NDArray

from firewatch.geo.build import AX, AY, COLUMNS, CY, FIRST, UX, UY, YHI, build
from firewatch.geo.grid import Grid
from firewatch.geo.tiling import IndexParams, Tiling, cell_edges, plan_tiling

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
_CHUNK = 1 << 16  # points per fast-path chunk (keeps temporaries in cache)
_MIXED_CHUNK = 1 << 13  # points per crossing-phase chunk
F64 = NDArray[np.float64]
I32 = NDArray[np.int32]
I64 = NDArray[np.int64]


@dataclass
class LocateStats:
    """What the last batch needed: points in mixed tiles, points sent to the GEOS fallback."""

    points: int = 0
    mixed: int = 0
    fallback: int = 0


@dataclass(eq=False)
class LocateIndex:
    tiling: Tiling
    n_cells: int
    raster: I32  # (ny + 2) * (nx + 2): the tiles plus a ring of -1 tiles around them
    offsets: I64  # mixed tile k: rows offsets[k]:offsets[k+1] of table
    table: F64  # (rows, 7): ax, ay, yhi, ux, uy, cy, first (see firewatch.geo.build)
    cell: I32  # candidate cell of each row
    geoms: NDArray[np.object_] = field(repr=False)
    last: LocateStats = field(default_factory=LocateStats)
    _tree: shapely.STRtree | None = field(default=None, repr=False)

    @classmethod
    def build(cls, grid: Grid, params: IndexParams | None = None) -> LocateIndex:
        params = params or IndexParams()
        area = float(shapely.area(grid.geoms).sum())
        tiling = plan_tiling(grid.bounds, area, len(grid), params)
        built = build(cell_edges(grid.geoms), tiling)
        nx, ny = tiling.nx, tiling.ny
        raster = np.full((ny + 2, nx + 2), -1, dtype=np.int32)
        raster[1:-1, 1:-1] = built.raster.reshape(ny, nx)
        return cls(
            tiling, len(grid), raster.ravel(), built.offsets, built.table, built.cell, grid.geoms
        )

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.raster, self.offsets, self.table, self.cell))

    @property
    def tree(self) -> shapely.STRtree:
        if self._tree is None:
            self._tree = shapely.STRtree(self.geoms)
        return self._tree

    def locate(self, lon: ArrayLike, lat: ArrayLike) -> I32:
        """Cell index of each point, or -1; lon and lat are same-shaped float arrays."""
        x = np.ascontiguousarray(lon, dtype=np.float64)
        y = np.ascontiguousarray(lat, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"lon and lat differ in shape: {x.shape} vs {y.shape}")
        fx, fy = x.ravel(), y.ravel()
        if len(fx) == 1:  # one point (where a camera's sights place a fire): the raster in floats
            tile = self._tile(float(fx[0]), float(fy[0]))
            if tile > -2:
                self.last = LocateStats(1, 0, 0)
                return np.full(x.shape, tile, dtype=np.int32)
        out = np.empty(fx.shape, dtype=np.int32)
        for s in range(0, len(fx), _CHUNK):
            out[s : s + _CHUNK] = self._lookup(fx[s : s + _CHUNK], fy[s : s + _CHUNK])
        mixed = np.flatnonzero(out <= -2)
        ambiguous: list[I64] = []
        for s in range(0, len(mixed), _MIXED_CHUNK):
            idx = mixed[s : s + _MIXED_CHUNK]
            out[idx], amb = self._crossings(fx[idx], fy[idx], -2 - out[idx])
            ambiguous.append(idx[amb])
        fallback = np.concatenate(ambiguous) if ambiguous else np.empty(0, dtype=np.int64)
        if len(fallback):
            out[fallback] = self._fallback(fx[fallback], fy[fallback])
        self.last = LocateStats(len(fx), len(mixed), len(fallback))
        return out.reshape(x.shape)

    def _lookup(self, x: F64, y: F64) -> I32:
        t = self.tiling
        inv = 1.0 / t.tile
        fx = np.subtract(x, t.x0 - t.tile)
        fx *= inv
        np.fmax(fx, 0.0, out=fx)  # fmax also maps NaN to the -1 border
        np.fmin(fx, t.nx + 1, out=fx)
        fy = np.subtract(y, t.y0 - t.tile)
        fy *= inv
        np.fmax(fy, 0.0, out=fy)
        np.fmin(fy, t.ny + 1, out=fy)
        flat = fy.astype(np.int64)
        flat *= t.nx + 2
        flat += fx.astype(np.int64)
        return self.raster.take(flat)

    def _tile(self, x: float, y: float) -> int:
        """`_lookup` of one point, on Python floats (the same arithmetic, numpy's call costs
        being most of it for one point)."""
        t = self.tiling
        inv = 1.0 / t.tile
        fx, fy = (x - (t.x0 - t.tile)) * inv, (y - (t.y0 - t.tile)) * inv
        fx = min(fx, t.nx + 1.0) if fx >= 0.0 else 0.0  # NaN to the -1 border, as fmax does
        fy = min(fy, t.ny + 1.0) if fy >= 0.0 else 0.0
        return int(self.raster[int(fy) * (t.nx + 2) + int(fx)])

    def _crossings(self, px: F64, py: F64, tile: I32) -> tuple[I32, NDArray[np.bool_]]:
        """Answers for points in mixed tiles, and which points were ambiguous."""
        out = np.full(len(px), -1, dtype=np.int32)
        start = self.offsets[tile]
        count = self.offsets[tile + 1] - start
        ends = np.cumsum(count)
        total = int(ends[-1]) if len(ends) else 0
        if total == 0:
            return out, np.zeros(len(px), dtype=bool)
        seg = np.repeat(start - (ends - count), count)
        seg += np.arange(total)
        rows = self.table.take(seg, axis=0)  # one gather of whole rows: fewer cache misses
        qx, qy = np.repeat(px, count), np.repeat(py, count)
        dy = qy - rows[:, AY]
        side = rows[:, UX] * dy
        side -= rows[:, UY] * (qx - rows[:, AX])
        hit = (dy >= 0.0) & (qy < rows[:, YHI]) & (side > 0.0)
        hit ^= qy < rows[:, CY]  # a crossing of the line x = S above p (clipped pieces)
        flag = rows[:, FIRST]
        hit ^= flag == 2.0  # the candidate's crossings above the tile
        starts = np.flatnonzero(flag)
        odd = np.logical_xor.reduceat(hit, starts)
        inside = starts[odd]
        point = np.searchsorted(ends, inside, side="right")
        lowest = np.ones(len(point), dtype=bool)  # candidates come sorted by cell in a tile
        lowest[1:] = point[1:] != point[:-1]
        out[point[lowest]] = self.cell.take(seg[inside[lowest]])
        near = np.flatnonzero(np.abs(side) <= self.tiling.eps)
        ambiguous = np.zeros(len(px), dtype=bool)
        ambiguous[np.searchsorted(ends, near, side="right")] = True
        return out, ambiguous

    def _fallback(self, x: F64, y: F64) -> I32:
        pairs = self.tree.query(shapely.points(x, y), predicate="intersects")
        best = np.full(len(x), np.iinfo(np.int32).max, dtype=np.int64)
        np.minimum.at(best, pairs[0], pairs[1])
        return np.where(best == np.iinfo(np.int32).max, -1, best).astype(np.int32)

    # --- cache -------------------------------------------------------------------------------

    def save(self, path: Path, key: str) -> None:
        """Write the arrays to `path` atomically (np.savez, no pickle)."""
        t = self.tiling
        meta = np.array([t.x0, t.y0, t.tile, t.margin, t.eps], dtype=np.float64)
        sizes = np.array([t.nx, t.ny, self.n_cells, INDEX_FORMAT], dtype=np.int64)
        fd, tmp = tempfile.mkstemp(prefix=".locate-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    key=np.array(key),
                    meta=meta,
                    sizes=sizes,
                    raster=self.raster,
                    offsets=self.offsets,
                    table=self.table,
                    cell=self.cell,
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, key: str, geoms: NDArray[np.object_]) -> LocateIndex:
        """Read arrays written by `save`; ValueError if they are not for `key` or inconsistent."""
        with path.open("rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            if str(z["key"]) != key:
                raise ValueError("the file is for another grid, schema or index version")
            x0, y0, tile, margin, eps = (float(v) for v in z["meta"])
            nx, ny, n_cells, version = (int(v) for v in z["sizes"])
            raster, offsets, table, cell = (
                np.ascontiguousarray(z[f]) for f in ("raster", "offsets", "table", "cell")
            )
        if version != INDEX_FORMAT or n_cells != len(geoms):
            raise ValueError("index format or cell count differs")
        tiling = Tiling(x0, y0, tile, nx, ny, margin, eps)
        index = cls(tiling, n_cells, raster, offsets, table, cell, geoms)
        index.check()
        return index

    def check(self) -> None:
        """ValueError unless the arrays are consistent (shapes, dtypes, ranges)."""
        t, n_rows = self.tiling, len(self.table)
        n_mixed = len(self.offsets) - 1
        expect = {"raster": np.int32, "offsets": np.int64, "cell": np.int32, "table": np.float64}
        for name, dtype in expect.items():
            a = getattr(self, name)
            if a.dtype != dtype or a.ndim != (2 if name == "table" else 1):
                raise ValueError(f"array {name} has dtype {a.dtype}, ndim {a.ndim}")
        if self.table.shape[1] != len(COLUMNS) or len(self.cell) != n_rows:
            raise ValueError("table and cell arrays do not match")
        if len(self.raster) != (t.nx + 2) * (t.ny + 2) or n_mixed < 0:
            raise ValueError("raster size does not match the tiling")
        if self.offsets[0] != 0 or self.offsets[-1] != n_rows or np.any(np.diff(self.offsets) < 0):
            raise ValueError("row offsets are not a partition of the table")
        if self.raster.max() >= self.n_cells or self.raster.min() < -2 - (n_mixed - 1):
            raise ValueError("raster values out of range")
        if n_rows and (self.cell.min() < 0 or self.cell.max() >= self.n_cells):
            raise ValueError("candidate cells out of range")
        if np.isnan(self.table).any() or not np.isin(self.table[:, FIRST], (0.0, 1.0, 2.0)).all():
            raise ValueError("table values are not valid")
        if not (t.tile > 0 and t.nx > 0 and t.ny > 0 and np.isfinite([t.x0, t.y0, t.eps]).all()):
            raise ValueError("tiling is not valid")


def cache_key(grid: Grid, params: IndexParams) -> str:
    doc = {
        "format": INDEX_FORMAT,
        "grid_sha256": grid.sha256,
        "schema": grid.schema.model_dump(),
        "params": asdict(params),
        "cells": len(grid),
    }
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def load_index(
    grid: Grid, cache_dir: Path | None = None, params: IndexParams | None = None
) -> LocateIndex:
    """The grid's locate index, from ``cache_dir/locate-<key>.npz`` when valid, else built."""
    params = params or IndexParams()
    if cache_dir is None:
        return LocateIndex.build(grid, params)
    key = cache_key(grid, params)
    path = Path(cache_dir) / f"locate-{key}.npz"
    if path.exists():
        try:
            return LocateIndex.load(path, key, grid.geoms)
        except Exception as exc:  # corrupt in any way: rebuild, never trust
            log.warning("locate index cache %s is unusable (%s); rebuilding it", path, exc)
    index = LocateIndex.build(grid, params)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        index.save(path, key)
    except OSError as exc:
        log.warning("cannot write locate index cache %s (%s); continuing without it", path, exc)
    return index
