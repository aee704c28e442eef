"""The simulated world: the grid's cells, sensors, camera towers and one static heat source.

Positions are kept in km in an equirectangular frame about the grid's centre and turned into
degrees (6 decimals) only when a record is written.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
import shapely.errors
from numpy.typing import NDArray
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from firewatch.errors import GridError
from firewatch.sim.frame import Frame
from firewatch.sim.hierarchy import cluster_means, lloyd

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

SENSOR_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 4.0}  # sensors per cell, relative
CAMERA_RANGE_KM = 8.0
EDGE_MARGIN_KM = 2.0  # fires, noise and the static site stay this far inside the grid


@dataclass(frozen=True, eq=False)  # (hashed by identity: what is worked out of it is kept)
class SimGrid:
    """The cells of a forest grid, with what the simulation needs of them."""

    ids: list[str]
    teams: list[str | None]
    risks: list[str]
    geoms: NDArray[np.object_]  # degrees
    frame: Frame
    centers: FloatArray  # (n, 2) km: a point inside each cell
    inner: BaseGeometry  # km: the grid shrunk by EDGE_MARGIN_KM, prepared
    tree: shapely.STRtree  # over geoms

    def locate(self, x: float, y: float) -> int | None:
        """The index of the cell holding the km point (x, y), if any: `locate_all` of one, in
        Python numbers (np.round(v, 6) is rint(v * 1e6) / 1e6, and round() rounds half to even
        as rint does) and the cells' squares, then shapely's exact test in grid order."""
        lon, lat = self.frame.to_deg(float(x), float(y))
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        lon, lat = round(lon * 1e6) / 1e6, round(lat * 1e6) / 1e6
        for cell in self.squares.candidates(lon, lat):
            if shapely.intersects_xy(self.geoms[cell], lon, lat):
                return cell
        return None

    @functools.cached_property
    def squares(self) -> Squares:
        return Squares.of(self.geoms)

    def locate_all(self, x: FloatArray, y: FloatArray) -> IntArray:
        """The cell holding each km point, -1 where none; the first in grid order on a border."""
        lon, lat = self.to_deg(x, y)
        points = shapely.points(np.column_stack([lon, lat]))  # (faster than points(lon, lat))
        point, cell = self.tree.query(points, predicate="intersects")
        first = np.full(len(lon), len(self.ids), dtype=np.int64)
        np.minimum.at(first, point, cell)
        first[first == len(self.ids)] = -1
        return first

    def well_inside(self, x: float, y: float) -> bool:
        return bool(shapely.contains_xy(self.inner, x, y))

    def well_inside_all(self, x: FloatArray, y: FloatArray) -> BoolArray:
        inside: BoolArray = shapely.contains_xy(self.inner, x, y)
        return inside

    def to_deg(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        lon, lat = self.frame.to_deg(x, y)
        return lon.round(6), lat.round(6)  # (np.round, without its wrapper's cost)


@dataclass(frozen=True)
class Squares:
    """The cells whose bounding box meets each square of a lattice about a cell wide (degrees):
    the cells STRtree.query tests for a point, found by arithmetic."""

    origin: tuple[float, float]
    size: float
    cells: dict[tuple[int, int], list[int]]  # a square's cells, in grid order
    bounds: list[tuple[float, float, float, float]]

    @classmethod
    def of(cls, geoms: NDArray[np.object_]) -> Squares:
        bounds = shapely.bounds(geoms)
        extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
        size = float(np.median(extent)) or 1.0
        squares = cls((float(bounds[:, 0].min()), float(bounds[:, 1].min())), size, {}, [])
        for cell, (minx, miny, maxx, maxy) in enumerate(bounds.tolist()):
            (col0, row0), (col1, row1) = squares.square(minx, miny), squares.square(maxx, maxy)
            for col in range(col0, col1 + 1):
                for row in range(row0, row1 + 1):
                    squares.cells.setdefault((col, row), []).append(cell)
            squares.bounds.append((minx, miny, maxx, maxy))
        return squares

    def square(self, lon: float, lat: float) -> tuple[int, int]:
        """(Monotonic: a point in a cell's box lies in one of the squares of its corners' span.)"""
        return (
            math.floor((lon - self.origin[0]) / self.size),
            math.floor((lat - self.origin[1]) / self.size),
        )

    def candidates(self, lon: float, lat: float) -> list[int]:
        """The cells whose bounding box holds the point, in grid order."""
        return [
            cell
            for cell in self.cells.get(self.square(lon, lat), [])
            if self.bounds[cell][0] <= lon <= self.bounds[cell][2]
            and self.bounds[cell][1] <= lat <= self.bounds[cell][3]
        ]


@dataclass(frozen=True)
class Devices:
    names: list[str]
    xy: FloatArray  # (n, 2) km
    lon: FloatArray  # degrees, rounded to 6 decimals
    lat: FloatArray


@dataclass(frozen=True)
class World:
    grid: SimGrid
    sensors: Devices
    phase: IntArray  # seconds after each 10-minute mark at which each sensor reports
    cameras: Devices
    static_xy: tuple[float, float]  # an industrial heat source every satellite pass sees


def read_grid(path: Path) -> SimGrid:
    """Read a GeoJSON grid (firewatch's default schema: id, team, risk)."""
    try:
        features = _json(path.read_bytes())["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GridError(f"{path}: not a readable GeoJSON FeatureCollection ({exc})") from exc
    cells = _polygons_at_once(features)
    if cells is None:
        cells = np.array([_polygon(path, i, f) for i, f in enumerate(features)], dtype=object)
    ids, teams, risks = [], [], []
    for i, feature in enumerate(features):
        props: dict[str, Any] = feature.get("properties") or {}
        ids.append(str(props.get("id", i)))
        teams.append(props.get("team"))
        risks.append(str(props.get("risk") or "medium"))
    if len(cells) == 0:
        raise GridError(f"{path}: the grid has no cells")
    minx, miny, maxx, maxy = shapely.total_bounds(cells)
    frame = Frame(round((minx + maxx) / 2, 6), round((miny + maxy) / 2, 6))
    points = shapely.point_on_surface(cells)
    cx, cy = frame.to_km(shapely.get_x(points), shapely.get_y(points))
    outline = shapely.transform(
        outline_of(cells), lambda c: np.column_stack(frame.to_km(c[:, 0], c[:, 1]))
    )
    inner = outline.buffer(-EDGE_MARGIN_KM)
    shapely.prepare(inner)
    centers = np.column_stack([cx, cy])
    return SimGrid(ids, teams, risks, cells, frame, centers, inner, shapely.STRtree(cells))


def _json(text: bytes) -> Any:
    """json.loads, by orjson (twice as fast) where it can: it refuses what JSON does not allow
    but Python's json reads (NaN, huge integers)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def outline_of(cells: NDArray[np.object_]) -> BaseGeometry:
    """The union of the cells. Where they are a valid coverage (polygons that meet only along
    their borders, as `firewatch grid build` makes them), GEOS's coverage union, which is the
    polygon union_all makes, its rings maybe from another vertex: the 2 km buffer is then the
    same polygon (normalize() alike, the same bytes on 25 grids of six districts), so
    well_inside says the same. With the check that they are a coverage, about 2x faster than
    union_all; else union_all."""
    valid = shapely.make_valid(cells)
    polygonal = np.isin(shapely.get_type_id(valid), (3, 6)).all()  # Polygon, MultiPolygon
    if len(valid) and polygonal and shapely.coverage_is_valid(valid):
        return shapely.coverage_union_all(valid)
    return shapely.union_all(valid)


def _polygon(path: Path, i: int, feature: Any) -> BaseGeometry:
    props: dict[str, Any] = feature.get("properties") or {}
    try:
        geom = shape(feature["geometry"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GridError(f"{path}: feature {i} has no usable geometry") from exc
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise GridError(f"{path}: feature {i} ({props.get('id')}) is not a polygon")
    return geom


def _polygons_at_once(features: list[Any]) -> NDArray[np.object_] | None:
    """What `shape` makes of each feature, the polygons of one ring (nearly all cells) made in one
    call from all their coordinates; None if a feature is not like that or fails, so that
    _polygon says which (the same shapely geometries: rings of the same coordinates)."""
    try:
        one_ring, rings, others = [], [], []
        for i, feature in enumerate(features):
            geometry = feature["geometry"]
            if geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 1:
                one_ring.append(i)
                rings.append(geometry["coordinates"][0])
            else:
                others.append(i)
        xy = np.array(list(chain.from_iterable(rings)), dtype=np.float64)
        if len(rings) and (xy.ndim != 2 or xy.shape[1] != 2):
            return None
        lengths = np.array([len(r) for r in rings], dtype=np.int64)
        cells = np.empty(len(features), dtype=object)
        if rings:
            ring_of = np.repeat(np.arange(len(rings)), lengths)
            cells[one_ring] = shapely.polygons(shapely.linearrings(xy, indices=ring_of))
        for i in others:
            cells[i] = shape(features[i]["geometry"])
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.ShapelyError):
        return None
    types = shapely.get_type_id(cells)  # 3: Polygon, 6: MultiPolygon
    if len(cells) == 0 or shapely.is_empty(cells).any() or not np.isin(types, (3, 6)).all():
        return None
    return cells


def make_world(
    grid: SimGrid,
    sensors: int,
    cameras: int,
    rng: np.random.Generator,
    static_at: tuple[float, float] | None = None,
) -> World:
    """Sensors (denser in riskier cells), camera towers, and the static heat source.

    The heat source is at `static_at` (lat, lon) when that is in the grid, else in a seeded
    low-risk cell well inside it.
    """
    weights = np.array([SENSOR_WEIGHT.get(r, 2.0) for r in grid.risks])
    cells = rng.choice(len(grid.ids), size=sensors, p=weights / weights.sum())
    sensor_xy = _points_in_cells(grid, cells, rng)
    phase = rng.integers(0, 600, size=sensors).astype(np.int64)
    camera_xy = _towers(grid, cameras, rng)
    return World(
        grid=grid,
        sensors=_devices(grid, "S-{:04d}", sensor_xy),
        phase=phase,
        cameras=_devices(grid, "CAM-{:02d}", camera_xy),
        static_xy=_static_site(grid, static_at, rng),
    )


def _static_site(
    grid: SimGrid, static_at: tuple[float, float] | None, rng: np.random.Generator
) -> tuple[float, float]:
    if static_at is not None:
        x, y = grid.frame.to_km(np.array([static_at[1]]), np.array([static_at[0]]))
        if grid.locate(float(x[0]), float(y[0])) is not None:
            return float(x[0]), float(y[0])
    low = [i for i, r in enumerate(grid.risks) if r == "low"] or list(range(len(grid.ids)))
    inside = [i for i in low if grid.well_inside(*grid.centers[i])] or low
    x, y = grid.centers[int(rng.choice(inside))]
    return float(x), float(y)


def _devices(grid: SimGrid, pattern: str, xy: FloatArray) -> Devices:
    lon, lat = grid.to_deg(xy[:, 0], xy[:, 1])
    names = [pattern.format(i + 1) for i in range(len(xy))]
    return Devices(names, xy, lon, lat)


def _points_in_cells(grid: SimGrid, cells: IntArray, rng: np.random.Generator) -> FloatArray:
    """One uniform random point (km) inside each of the given cells."""
    bounds = shapely.bounds(grid.geoms[cells])
    lon = np.zeros(len(cells))
    lat = np.zeros(len(cells))
    todo = np.arange(len(cells))
    while todo.size:
        u = rng.uniform(size=(todo.size, 2))
        b = bounds[todo]
        x = b[:, 0] + u[:, 0] * (b[:, 2] - b[:, 0])
        y = b[:, 1] + u[:, 1] * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(grid.geoms[cells[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    x_km, y_km = grid.frame.to_km(lon, lat)
    return np.column_stack([x_km, y_km])


def _towers(grid: SimGrid, cameras: int, rng: np.random.Generator) -> FloatArray:
    """Camera towers spread over the grid: cell points nearest to k-means centres, north first."""
    if cameras <= 0:
        return np.zeros((0, 2))
    points = grid.centers
    k = min(cameras, len(points))
    start = points[rng.choice(len(points), size=k, replace=False)]
    labels = lloyd(points, start, iterations=10)
    means, filled = cluster_means(points, labels, k)
    if not filled.all():
        raise GridError(f"camera towers: k-means left a tower without cells ({k} towers)")
    dx, dy = (points - means[labels]).T
    # per cluster, its member nearest to its mean (the first in grid order on a tie)
    order = np.lexsort((np.arange(len(points)), dx * dx + dy * dy, labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order[1:]] != labels[order[:-1]]
    xy = points[order[first]]
    return xy[np.lexsort((xy[:, 0], -xy[:, 1]))]
