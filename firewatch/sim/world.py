"""The simulated world: the grid's cells, sensors, camera towers and one static heat source.

Positions are kept in km in an equirectangular frame about the grid's centre and turned into
degrees (6 decimals) only when a record is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from firewatch.errors import GridError
from firewatch.sim.frame import Frame
from firewatch.sim.hierarchy import lloyd

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

SENSOR_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 4.0}  # sensors per cell, relative
CAMERA_RANGE_KM = 8.0
EDGE_MARGIN_KM = 2.0  # fires, noise and the static site stay this far inside the grid


@dataclass(frozen=True)
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
        """The index of the cell holding the km point (x, y), if any."""
        cell = int(self.locate_all(np.array([x]), np.array([y]))[0])
        return None if cell < 0 else cell

    def locate_all(self, x: FloatArray, y: FloatArray) -> IntArray:
        """The cell holding each km point, -1 where none; the first in grid order on a border."""
        lon, lat = self.to_deg(x, y)
        point, cell = self.tree.query(shapely.points(lon, lat), predicate="intersects")
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
        return np.round(lon, 6), np.round(lat, 6)


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
        features = json.loads(path.read_bytes())["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GridError(f"{path}: not a readable GeoJSON FeatureCollection ({exc})") from exc
    ids, teams, risks, geoms = [], [], [], []
    for i, feature in enumerate(features):
        props: dict[str, Any] = feature.get("properties") or {}
        try:
            geom = shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GridError(f"{path}: feature {i} has no usable geometry") from exc
        if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise GridError(f"{path}: feature {i} ({props.get('id')}) is not a polygon")
        ids.append(str(props.get("id", i)))
        teams.append(props.get("team"))
        risks.append(str(props.get("risk") or "medium"))
        geoms.append(geom)
    if not geoms:
        raise GridError(f"{path}: the grid has no cells")
    cells = np.array(geoms, dtype=object)
    minx, miny, maxx, maxy = shapely.total_bounds(cells)
    frame = Frame(round((minx + maxx) / 2, 6), round((miny + maxy) / 2, 6))
    points = shapely.point_on_surface(cells)
    cx, cy = frame.to_km(shapely.get_x(points), shapely.get_y(points))
    outline = shapely.transform(
        shapely.union_all(shapely.make_valid(cells)),
        lambda c: np.column_stack(frame.to_km(c[:, 0], c[:, 1])),
    )
    inner = outline.buffer(-EDGE_MARGIN_KM)
    shapely.prepare(inner)
    centers = np.column_stack([cx, cy])
    return SimGrid(ids, teams, risks, cells, frame, centers, inner, shapely.STRtree(cells))


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
    towers = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        mean = points[members].mean(axis=0)
        towers.append(points[members[((points[members] - mean) ** 2).sum(axis=1).argmin()]])
    xy = np.array(towers)
    return xy[np.lexsort((xy[:, 0], -xy[:, 1]))]
