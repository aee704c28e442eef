"""Build the demo forest grid of a district: about 1 km cells with a synthetic hierarchy.

The cells are `cell_km` squares laid in a local metric frame (equirectangular about the district's
centroid) and clipped to the district boundary. A clipped piece smaller than 20% of a full cell is
merged into the neighbouring cell with which it shares the longest border, so the grid covers the
district without gaps and without slivers. Coordinates are rounded to 6 decimals (about 0.1 m) and
every cell is checked to be a valid polygon after rounding.

The hierarchy is SYNTHETIC, because public village boundaries are not available for Quzhou:
townships, villages and teams are made up (`firewatch.sim.hierarchy`, which also documents the
rule for the risk class).

Note: `firewatch.geo.build` is the locate index's builder; this module lives with the simulation
because the grid it makes is demo data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from firewatch.errors import GridError
from firewatch.sim import hierarchy
from firewatch.sim.frame import FloatArray, Frame, IntArray
from firewatch.sim.hierarchy import Borders, shared_borders

SLIVER_FRACTION = 0.2
DECIMALS = 6

# Short id prefixes of the six county-level districts of Quzhou, by adcode.
PREFIXES = {
    "330802": "KC",
    "330803": "QJ",
    "330822": "CS",
    "330824": "KH",
    "330825": "LY",
    "330881": "JS",
}


@dataclass
class _Cell:
    row: int
    col: int
    geom: BaseGeometry  # in degrees
    area_km2: float


def build_grid(
    boundary_path: Path,
    district: str,
    cell_km: float = 1.0,
    seed: int = 7,
    townships: int = 18,
    cells_per_village: int = 12,
    *,
    prefix: str | None = None,
) -> dict[str, Any]:
    """The forest grid of `district` as a GeoJSON FeatureCollection (a plain dict)."""
    if not cell_km > 0:
        raise GridError(f"cell size must be positive, got {cell_km} km")
    if townships < 1 or cells_per_village < 1:
        raise GridError("townships and cells_per_village must be at least 1")
    boundary, props = read_district(boundary_path, district)
    centroid = boundary.centroid
    frame = Frame(round(centroid.x, DECIMALS), round(centroid.y, DECIMALS))
    cells = _merge_slivers(_clip_cells(boundary, frame, cell_km), cell_km)
    for cell in cells:
        cell.geom = round_valid(cell.geom, f"cell r{cell.row}c{cell.col} of {props['name']}")
    geoms = np.array([c.geom for c in cells], dtype=object)
    borders = shared_borders(geoms)
    cx, cy = frame.to_km(*_centroids(geoms))
    rng = np.random.default_rng([seed, 1])
    points = np.column_stack([cx, cy])
    town = hierarchy.townships(boundary, frame, points, borders, townships, rng)
    village = hierarchy.villages(points, borders, town, cells_per_village, rng)
    risk = hierarchy.risk(cx, cy, np.random.default_rng([seed, 2]))
    code = prefix or _prefix(props)
    width = max(3, len(str(max(max(c.row, c.col) for c in cells))))
    features = _features(cells, town, village, risk, code, str(props["name"]), width)
    meta = {
        "generator": "firewatch grid build",
        "boundary": boundary_path.name,
        "district": props["name"],
        "adcode": props.get("adcode"),
        "cell_km": cell_km,
        "seed": seed,
        "cells": len(features),
        "townships": len({f["properties"]["township"] for f in features}),
        "villages": len({f["properties"]["village"] for f in features}),
        "synthetic_hierarchy": True,
    }
    return {"type": "FeatureCollection", "firewatch": meta, "features": features}


def write_grid(fc: dict[str, Any], path: Path) -> None:
    """Write `fc` with one feature per line; the same collection always gives the same bytes."""

    def dump(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    head = {k: v for k, v in fc.items() if k != "features"}
    lines = [dump(head)[:-1] + ',"features":[']
    features = fc.get("features", [])
    lines += [dump(f) + ("," if i < len(features) - 1 else "") for i, f in enumerate(features)]
    lines.append("]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def grid_build_main(boundary: Path, district: str, cell_km: float, seed: int, out: Path) -> str:
    """`firewatch grid build`: build and write the grid, return a one-line summary."""
    fc = build_grid(boundary, district, cell_km=cell_km, seed=seed)
    write_grid(fc, out)
    props = [f["properties"] for f in fc["features"]]
    return (
        f"{len(props)} cells of {fc['firewatch']['district']} ({cell_km:g} km, seed {seed}): "
        f"{len({p['township'] for p in props})} townships, "
        f"{len({p['village'] for p in props})} villages, "
        f"{len({p['team'] for p in props})} teams -> {out}"
    )


def read_district(path: Path, district: str) -> tuple[BaseGeometry, dict[str, Any]]:
    """The (valid) polygon and properties of the feature named `district` (name or adcode)."""
    try:
        data = json.loads(path.read_bytes())
        features = data["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GridError(f"{path}: not a readable GeoJSON FeatureCollection ({exc})") from exc
    names = []
    for i, feature in enumerate(features):
        props = feature.get("properties") or {}
        names.append(f"{props.get('name')} ({props.get('adcode')})")
        if district.strip() not in (str(props.get("name")), str(props.get("adcode"))):
            continue
        try:
            geom = shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GridError(f"{path}: feature {i} ({district}) has no usable geometry") from exc
        if not geom.is_valid:
            geom = _polygonal(shapely.make_valid(geom))
        if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise GridError(f"{path}: feature {i} ({district}) is not a polygon")
        return geom, {"name": district, **props}
    raise GridError(
        f"{path}: no district named {district!r}; available (name and adcode): {', '.join(names)}"
    )


def round_valid(geom: BaseGeometry, what: str) -> BaseGeometry:
    """`geom` oriented as RFC 7946 asks, rounded to 6 decimals, and repaired if that broke it."""
    rounded = shapely.transform(shapely.orient_polygons(geom), lambda c: np.round(c, DECIMALS))
    if shapely.is_valid(rounded) and not rounded.is_empty:
        return rounded
    repaired = _polygonal(shapely.set_precision(shapely.make_valid(geom), 10.0**-DECIMALS))
    repaired = shapely.transform(shapely.orient_polygons(repaired), lambda c: np.round(c, 6))
    if repaired.is_empty or not shapely.is_valid(repaired):
        raise GridError(f"{what}: no valid polygon after rounding to {DECIMALS} decimals")
    return repaired


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (make_valid may add lines and points)."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = [p for g in parts for p in shapely.get_parts(g)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _clip_cells(boundary: BaseGeometry, frame: Frame, cell_km: float) -> list[_Cell]:
    """Squares of the frame's lattice clipped to the boundary; row 0 is the northernmost."""
    minx, miny, maxx, maxy = boundary.bounds
    x_lo, y_lo = frame.to_km(np.array([minx]), np.array([miny]))
    x_hi, y_hi = frame.to_km(np.array([maxx]), np.array([maxy]))
    c0, c1 = math.floor(x_lo[0] / cell_km), math.ceil(x_hi[0] / cell_km)
    r0, r1 = math.floor(y_lo[0] / cell_km), math.ceil(y_hi[0] / cell_km)
    xs, _ = frame.to_deg(np.arange(c0, c1 + 1) * cell_km, np.zeros(c1 - c0 + 1))
    _, ys = frame.to_deg(np.zeros(r1 - r0 + 1), np.arange(r0, r1 + 1) * cell_km)
    xs, ys = np.round(xs, DECIMALS), np.round(ys, DECIMALS)
    n_rows, n_cols = r1 - r0, c1 - c0
    col_grid, south_grid = np.meshgrid(np.arange(n_cols), np.arange(n_rows))
    col, south = col_grid.ravel(), south_grid.ravel()
    boxes = shapely.box(xs[col], ys[south], xs[col + 1], ys[south + 1])
    shapely.prepare(boundary)
    hit = shapely.intersects(boundary, boxes)
    clipped = shapely.intersection(boxes[hit], boundary)
    areas = shapely.area(clipped) * frame.kx * frame.ky
    cells = []
    for geom, area, c, s in zip(clipped, areas, col[hit], south[hit], strict=True):
        geom = _polygonal(geom)
        if not geom.is_empty:
            cells.append(_Cell(int(n_rows - 1 - s), int(c), geom, float(area)))
    cells.sort(key=lambda cell: (cell.row, cell.col))
    return cells


def _merge_slivers(cells: list[_Cell], cell_km: float) -> list[_Cell]:
    """Merge each piece under 20% of a full cell into the neighbour it shares most border with."""
    threshold = SLIVER_FRACTION * cell_km * cell_km
    borders = shared_borders(np.array([c.geom for c in cells], dtype=object))
    alive = [True] * len(cells)
    order = sorted(range(len(cells)), key=lambda i: (cells[i].area_km2, i))
    for s in order:
        if cells[s].area_km2 >= threshold or sum(alive) == 1:
            continue
        target = _merge_target(s, cells, borders, alive)
        cells[target].geom = _polygonal(shapely.union(cells[target].geom, cells[s].geom))
        cells[target].area_km2 += cells[s].area_km2
        for j, length in borders[s].items():
            borders[j].pop(s, None)
            if j != target:
                borders[target][j] = borders[target].get(j, 0.0) + length
                borders[j][target] = borders[target][j]
        alive[s] = False
    return [c for c, keep in zip(cells, alive, strict=True) if keep]


def _merge_target(s: int, cells: list[_Cell], borders: Borders, alive: list[bool]) -> int:
    """The live neighbour sharing the longest border with s, or the nearest cell if none."""
    if borders[s]:
        return max(borders[s], key=lambda j: (borders[s][j], -j))
    others = [j for j in range(len(cells)) if alive[j] and j != s]
    return min(others, key=lambda j: (cells[s].geom.distance(cells[j].geom), j))


def _centroids(geoms: NDArray[np.object_]) -> tuple[FloatArray, FloatArray]:
    points = shapely.centroid(geoms)
    return shapely.get_x(points), shapely.get_y(points)


def _prefix(props: dict[str, Any]) -> str:
    adcode = str(props.get("adcode", ""))
    if adcode in PREFIXES:
        return PREFIXES[adcode]
    initials = "".join(
        w[0] for w in str(props["name"]).split() if w[:1].isascii() and w[0].isalpha()
    )
    return initials.upper() or (f"D{adcode}" if adcode else "G")


def _features(
    cells: list[_Cell],
    town: IntArray,
    village: IntArray,
    risk: list[str],
    code: str,
    district: str,
    width: int,
) -> list[dict[str, Any]]:
    """GeoJSON features; townships and villages are numbered in order of their first cell."""
    t_no: dict[int, int] = {}
    v_no: dict[int, tuple[int, int]] = {}
    per_town: dict[int, int] = {}
    n_cell: dict[int, int] = {}
    features = []
    for i, cell in enumerate(cells):  # cells are sorted by (row, col)
        t, v = int(town[i]), int(village[i])
        t_no.setdefault(t, len(t_no) + 1)
        if v not in v_no:
            per_town[t] = per_town.get(t, 0) + 1
            v_no[v] = (t_no[t], per_town[t])
        tn, vn = v_no[v]
        n_cell[v] = n_cell.get(v, 0) + 1
        village_id, village_name = f"T{tn:02d}-V{vn:02d}", f"Village {tn:02d}-{vn:02d}"
        props = {
            "id": f"{code}-r{cell.row:0{width}d}c{cell.col:0{width}d}",
            "name": f"{village_name} cell {n_cell[v]}",
            "district": district,
            "township": f"T{tn:02d}",
            "township_name": f"Township {tn:02d}",
            "village": village_id,
            "village_name": village_name,
            "team": f"team-{village_id}",
            "risk": risk[i],
        }
        geometry = {"type": cell.geom.geom_type, "coordinates": _coordinates(cell.geom)}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    return features


def _coordinates(geom: BaseGeometry) -> list[Any]:
    def ring(coords: Any) -> list[list[float]]:
        return [[round(x, DECIMALS), round(y, DECIMALS)] for x, y in coords]

    def polygon(p: Any) -> list[list[list[float]]]:
        return [ring(p.exterior.coords), *(ring(r.coords) for r in p.interiors)]

    if geom.geom_type == "Polygon":
        return polygon(geom)
    return [polygon(p) for p in geom.geoms]
