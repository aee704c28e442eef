"""GeoJSON geometry of one grid feature -> a valid shapely (Multi)Polygon, repaired if it can be.

Repairs, each reported to the caller as an (action, detail) pair:

- ``closed_ring``: a ring whose last position differs from its first is closed (when it then has
  at least 4 positions);
- ``dropped_ring``: a ring with fewer than 4 positions, or a hole of zero area, is dropped; when
  it is the exterior ring of a part, the part and its holes go with it;
- ``dropped_part``: a part whose exterior ring encloses no area is dropped;
- ``make_valid``: an invalid result (self-intersection, ...) goes through ``shapely.make_valid``
  and only its polygonal part is kept.

What cannot be repaired raises ``GridError`` with the caller's ``where`` (file, feature, id)
prefixed: a null geometry, a type other than Polygon or MultiPolygon, coordinates that are not
numbers or not lon/lat, and nothing left after repair.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from firewatch.errors import GridError

Fixes = list[tuple[str, str]]
_FIRST_FEW = 5


def parse_geometry(geometry: Any, where: str) -> tuple[BaseGeometry, Fixes]:
    """Build one cell's geometry from a GeoJSON geometry object; `where` prefixes every error."""
    if geometry is None:
        raise GridError(f"{where}: geometry is null")
    if not isinstance(geometry, dict):
        raise GridError(f"{where}: geometry is not a JSON object")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        parts_json = [coords]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list):
            raise GridError(f"{where}: MultiPolygon coordinates are not a list")
        parts_json = coords
    else:
        raise GridError(f"{where}: geometry type {kind!r} is not Polygon or MultiPolygon")
    fixes: Fixes = []
    polygons: list[BaseGeometry] = []
    for p, part in enumerate(parts_json):
        polygon = _part(part, p, where, fixes)
        if polygon is not None:
            polygons.append(polygon)
    if not polygons:
        raise GridError(f"{where}: nothing left after repair ({_summary(fixes)})")
    geom = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
    return make_valid_polygonal(geom, where, fixes), fixes


def make_valid_polygonal(geom: BaseGeometry, where: str, fixes: Fixes) -> BaseGeometry:
    """`geom` if valid, else its polygonal part after ``shapely.make_valid`` (a fix is recorded)."""
    if shapely.is_valid(geom):
        return geom
    reason = _reason(str(shapely.is_valid_reason(geom)))
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon")]
    polygonal = shapely.union_all(parts) if parts else shapely.Polygon()
    if polygonal.is_empty or polygonal.area <= 0.0:
        raise GridError(f"{where}: nothing left after make_valid ({reason})")
    if polygonal.geom_type not in ("Polygon", "MultiPolygon"):  # pragma: no cover - defensive
        raise GridError(f"{where}: make_valid gave a {polygonal.geom_type}")
    fixes.append(("make_valid", f"{reason}; area {geom.area:.6g} -> {polygonal.area:.6g}"))
    return polygonal


def _reason(text: str) -> str:
    """GEOS's 'Ring Self-intersection[-121.8 41.3]' -> 'Ring Self-intersection at -121.8 41.3'."""
    match = re.fullmatch(r"(.*?)\[(.*)\]", text)
    return f"{match.group(1)} at {match.group(2)}" if match else text


def _part(part: Any, p: int, where: str, fixes: Fixes) -> BaseGeometry | None:
    if not isinstance(part, list):
        raise GridError(f"{where}: part {p} is not a list of rings")
    rings: list[NDArray[np.float64]] = []
    for r, ring_json in enumerate(part):
        ring = _ring(ring_json, f"{where}: part {p} ring {r}")
        if len(ring) >= 3 and not np.array_equal(ring[0], ring[-1]):
            ring = np.vstack([ring, ring[:1]])
            fixes.append(("closed_ring", f"part {p} ring {r}: first position repeated at the end"))
        if len(ring) < 4:
            what = "exterior ring, part dropped" if r == 0 else "hole"
            fixes.append(("dropped_ring", f"part {p} ring {r}: {len(ring)} coordinates ({what})"))
            if r == 0:
                return None
            continue
        if _flat(ring):
            if r == 0:
                fixes.append(("dropped_part", f"part {p}: exterior ring has its points on a line"))
                return None
            fixes.append(("dropped_ring", f"part {p} ring {r}: hole has its points on a line"))
            continue
        rings.append(ring)
    if not rings:
        fixes.append(("dropped_part", f"part {p}: no rings"))
        return None
    return shapely.Polygon(rings[0], rings[1:])


def _ring(ring_json: Any, where: str) -> NDArray[np.float64]:
    if not isinstance(ring_json, list):
        raise GridError(f"{where}: ring is not a list of positions")
    if not ring_json:
        return np.empty((0, 2))
    try:
        raw = np.asarray(ring_json)
    except (ValueError, TypeError):
        raw = np.asarray(ring_json, dtype=object)
    if raw.ndim != 2 or raw.shape[1] < 2 or raw.dtype.kind not in "iuf":
        raise GridError(f"{where}: coordinates are not [lon, lat] numbers")
    xy = raw[:, :2].astype(np.float64)
    bad = ~(np.isfinite(xy).all(axis=1))
    bad |= (np.abs(xy[:, 0]) > 180.0) | (np.abs(xy[:, 1]) > 90.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GridError(
            f"{where}: position {i} ({float(xy[i, 0])!r}, {float(xy[i, 1])!r}) is not a lon/lat "
            "(lon in -180..180, lat in -90..90)"
        )
    return xy


def _flat(ring: NDArray[np.float64]) -> bool:
    """All positions on one line (or one point): the ring encloses nothing, whatever its order."""
    d = ring - ring[0]
    far = d[np.argmax(np.abs(d).sum(axis=1))]
    return bool(np.all(far[0] * d[:, 1] - far[1] * d[:, 0] == 0.0))


def summarise(fixes: Fixes) -> list[tuple[str, str]]:
    """One (action, detail) per action, in first-seen order, counting repeats of an action."""
    by_action: dict[str, list[str]] = {}
    for action, detail in fixes:
        by_action.setdefault(action, []).append(detail)
    out = []
    for action, details in by_action.items():
        shown = "; ".join(details[:_FIRST_FEW])
        more = f"; and {len(details) - _FIRST_FEW} more" if len(details) > _FIRST_FEW else ""
        count = f"{len(details)} x: " if len(details) > 1 else ""
        out.append((action, f"{count}{shown}{more}"))
    return out


def _summary(fixes: Fixes) -> str:
    return ", ".join(f"{a}: {d}" for a, d in summarise(fixes)) or "no parts"
