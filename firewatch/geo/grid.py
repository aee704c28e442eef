"""The forest grid: cells (id, name, team and parents) with their (Multi)Polygon geometries.

A grid comes from a GeoJSON FeatureCollection (`load_grid`) or from geometries already in hand
(`make_grid`). Messy files are repaired where that is safe and every repair is reported as a
`Repair` naming the file and the feature; what cannot be repaired is a `GridError` naming them.

Which cell a point is in: **among the cells that cover the point (shapely ``intersects``: the
interior or the boundary), the one that comes first in file order (lowest index) wins.** This
decides points in overlapping cells and points exactly on shared edges and vertices alike, and
`firewatch.geo.index.LocateIndex` answers exactly by this rule. A point in no cell is outside.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
import yaml
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, ValidationError
from shapely.geometry.base import BaseGeometry

from firewatch.errors import GridError
from firewatch.geo.near import nearest_within
from firewatch.geo.repair import Fixes, make_valid_polygonal, parse_geometry, summarise

MEMORY = Path("<memory>")


class GridSchema(BaseModel):
    """Which GeoJSON property gives each cell attribute (None: the attribute is not in the file).

    With ``id=None`` every cell id is ``feature-<index>``; otherwise a feature without the id
    property is an error. The defaults are the property names of firewatch's own demo grid.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = "id"
    name: str | None = "name"
    team: str | None = "team"
    village: str | None = "village"
    township: str | None = "township"
    district: str | None = "district"
    risk: str | None = "risk"

    @classmethod
    def from_yaml(cls, path: str | Path) -> GridSchema:
        """Load a schema from a YAML mapping; unknown keys and bad values name the file."""
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise GridError(f"{path}: cannot read the grid schema: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise GridError(f"{path}: grid schema is not valid YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise GridError(f"{path}: grid schema must be a mapping of attribute: property")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
            )
            raise GridError(f"{path}: invalid grid schema: {problems}") from exc


@dataclass(frozen=True, slots=True)
class Cell:
    index: int
    id: str
    name: str | None = None
    team: str | None = None
    village: str | None = None
    township: str | None = None
    district: str | None = None
    risk: str | None = None


@dataclass(frozen=True)
class Repair:
    """One repair made while loading a grid, naming the file and the feature."""

    file: str
    feature: int
    cell_id: str
    action: str  # closed_ring, dropped_ring, dropped_part, make_valid
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.file} feature {self.feature} (id {self.cell_id}): {self.action}: {self.detail}"
        )


@dataclass(eq=False)
class Grid:
    path: Path
    sha256: str  # of the file bytes (of the geometries and cells for a made grid)
    schema: GridSchema
    cells: list[Cell]
    geoms: NDArray[np.object_]  # shapely (Multi)Polygons, same order as cells
    repairs: list[Repair] = field(default_factory=list)
    overlaps: list[tuple[int, int]] = field(default_factory=list)  # (i, j), i < j
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def cell(self, i: int) -> Cell:
        return self.cells[i]

    def __len__(self) -> int:
        return len(self.cells)

    @cached_property
    def tree(self) -> shapely.STRtree:
        """An STRtree of the cell geometries (tree index = cell index)."""
        return shapely.STRtree(self.geoms)

    def nearest_within(self, lon: ArrayLike, lat: ArrayLike, metres: float) -> NDArray[np.int32]:
        """Per point, the nearest cell within `metres` (-1 if none); meant for points outside.

        Distances are metres on a sphere in a local equirectangular projection at the point; ties
        go to the lowest cell index, so a point in a cell gets the cell `locate` gives it.
        """
        return nearest_within(self.tree, self.geoms, lon, lat, metres)


def load_grid(path: str | Path, schema: GridSchema | None = None) -> Grid:
    """Load and repair a GeoJSON FeatureCollection of Polygon/MultiPolygon cells."""
    path = Path(path)
    schema = schema if schema is not None else GridSchema()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GridError(f"{path}: cannot read the grid file: {exc.strerror or exc}") from exc
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise GridError(f"{path}: grid file is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise GridError(f"{path}: grid file is not a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise GridError(f"{path}: the FeatureCollection has no features")
    cells: list[Cell] = []
    geoms: list[BaseGeometry] = []
    repairs: list[Repair] = []
    for i, feature in enumerate(features):
        cell = _cell(feature, i, schema, path)
        geom, fixes = parse_geometry(feature.get("geometry"), f"{path} feature {i} (id {cell.id})")
        repairs += [Repair(path.name, i, cell.id, a, d) for a, d in summarise(fixes)]
        cells.append(cell)
        geoms.append(geom)
    sha = hashlib.sha256(data).hexdigest()
    return _finish(path, sha, schema, cells, geoms, repairs)


def make_grid(
    geoms: Sequence[BaseGeometry] | NDArray[np.object_],
    cells: Sequence[Cell] | None = None,
    *,
    path: Path = MEMORY,
    schema: GridSchema | None = None,
) -> Grid:
    """A grid from geometries in hand (tests, benchmarks, generated grids).

    Geometries must be non-empty Polygons or MultiPolygons; invalid ones go through make_valid
    (reported as repairs). Without `cells`, cell i is ``feature-<i>``. The sha256 hashes the
    geometries (WKB) and the cells, so an index cache keyed on it follows the content.
    """
    geom_list = list(geoms)
    if cells is None:
        cells = [Cell(i, f"feature-{i}") for i in range(len(geom_list))]
    if len(cells) != len(geom_list):
        raise GridError(f"{path}: {len(cells)} cells for {len(geom_list)} geometries")
    repairs: list[Repair] = []
    fixed: list[BaseGeometry] = []
    for i, (cell, geom) in enumerate(zip(cells, geom_list, strict=True)):
        where = f"{path} feature {i} (id {cell.id})"
        if cell.index != i:
            raise GridError(f"{where}: cell index {cell.index} is not its position {i}")
        if not isinstance(geom, BaseGeometry) or geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise GridError(f"{where}: geometry is not a Polygon or MultiPolygon")
        if geom.is_empty:
            raise GridError(f"{where}: geometry is empty")
        fixes: Fixes = []
        fixed.append(make_valid_polygonal(geom, where, fixes))
        repairs += [Repair(path.name, i, cell.id, a, d) for a, d in fixes]
    digest = hashlib.sha256()
    for wkb in shapely.to_wkb(np.array(fixed, dtype=object)):
        digest.update(wkb)
    digest.update(orjson.dumps([list(_cell_fields(c)) for c in cells]))
    return _finish(path, digest.hexdigest(), schema or GridSchema(), list(cells), fixed, repairs)


def find_overlaps(geoms: NDArray[np.object_], tree: shapely.STRtree) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of cells whose interiors overlap (DE-9IM T********)."""
    over = tree.query(geoms, predicate="overlaps")
    contains = tree.query(geoms, predicate="contains")
    pairs = np.concatenate([over, contains], axis=1)
    pairs = pairs[:, pairs[0] != pairs[1]]
    lo, hi = np.minimum(pairs[0], pairs[1]), np.maximum(pairs[0], pairs[1])
    uniq = np.unique(np.stack([lo, hi], axis=1), axis=0) if lo.size else np.empty((0, 2), int)
    return [(int(a), int(b)) for a, b in uniq]


def _finish(
    path: Path,
    sha: str,
    schema: GridSchema,
    cells: list[Cell],
    geom_list: list[BaseGeometry],
    repairs: list[Repair],
) -> Grid:
    if not cells:
        raise GridError(f"{path}: the grid has no cells")
    first: dict[str, int] = {}
    for cell in cells:
        if cell.id in first:
            raise GridError(
                f"{path} feature {cell.index} (id {cell.id}): duplicate cell id, "
                f"already used by feature {first[cell.id]}"
            )
        first[cell.id] = cell.index
    geoms = np.empty(len(geom_list), dtype=object)
    geoms[:] = geom_list
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
    grid = Grid(path, sha, schema, cells, geoms, repairs, [], (minx, miny, maxx, maxy))
    grid.overlaps = find_overlaps(geoms, grid.tree)
    return grid


def _cell(feature: Any, i: int, schema: GridSchema, path: Path) -> Cell:
    if not isinstance(feature, dict):
        raise GridError(f"{path} feature {i}: not a GeoJSON Feature object")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise GridError(f"{path} feature {i}: properties is not a JSON object")
    if schema.id is None:
        cell_id = f"feature-{i}"
    elif props.get(schema.id) is None:
        raise GridError(f"{path} feature {i}: no {schema.id!r} property (the cell id)")
    else:
        cell_id = str(props[schema.id])

    def get(key: str | None) -> str | None:
        value = props.get(key) if key is not None else None
        return None if value is None else str(value)

    return Cell(
        index=i,
        id=cell_id,
        name=get(schema.name),
        team=get(schema.team),
        village=get(schema.village),
        township=get(schema.township),
        district=get(schema.district),
        risk=get(schema.risk),
    )


def _cell_fields(c: Cell) -> tuple[str | None, ...]:
    return (c.id, c.name, c.team, c.village, c.township, c.district, c.risk)
