"""The nearest cell within a distance in metres, for points that fall just outside the grid.

Candidates come from the STRtree with a ``dwithin`` distance in degrees that can only be too
large: in the local equirectangular metric used here (x = dlon * cos(lat0), y = dlat, times
metres per degree on the mean-radius sphere), a point `metres` away is at most
``metres / (M * cos(lat0))`` degrees away in plain lon/lat. Each candidate is then measured in
metres in that projection, centred on the point, and the nearest within `metres` wins (ties to
the lowest cell index). The projection ignores the antimeridian; forest grids do not cross it.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = EARTH_RADIUS_M * np.pi / 180.0
_MIN_COS = 1e-6


def nearest_within(
    tree: shapely.STRtree,
    geoms: NDArray[np.object_],
    lon: ArrayLike,
    lat: ArrayLike,
    metres: float,
) -> NDArray[np.int32]:
    """Index of the nearest cell within `metres` of each (lon, lat), or -1."""
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in shape: {x.shape} vs {y.shape}")
    flat_x, flat_y = x.ravel(), y.ravel()
    out = np.full(flat_x.shape, -1, dtype=np.int32)
    if not (metres >= 0.0 and np.isfinite(metres)):
        raise ValueError(f"metres must be a finite distance >= 0, not {metres!r}")
    ok = np.flatnonzero(np.isfinite(flat_x) & np.isfinite(flat_y))
    if ok.size == 0:
        return out.reshape(x.shape)
    px, py = flat_x[ok], flat_y[ok]
    cos = np.maximum(np.cos(np.radians(py)), _MIN_COS)
    max_deg = np.minimum(metres / (METRES_PER_DEGREE * cos) * (1.0 + 1e-9) + 1e-12, 360.0)
    pairs = tree.query(shapely.points(px, py), predicate="dwithin", distance=max_deg)
    if pairs.shape[1] == 0:
        return out.reshape(x.shape)
    point, cell = pairs[0], pairs[1]
    dist = _metres(geoms[cell], px[point], py[point], cos[point])
    keep = dist <= metres
    point, cell, dist = point[keep], cell[keep], dist[keep]
    order = np.lexsort((cell, dist, point))  # by point, then distance, then cell index
    point, cell = point[order], cell[order]
    first = np.ones(point.size, dtype=bool)
    first[1:] = point[1:] != point[:-1]
    out[ok[point[first]]] = cell[first]
    return out.reshape(x.shape)


def _metres(
    geoms: NDArray[np.object_],
    lon0: NDArray[np.float64],
    lat0: NDArray[np.float64],
    cos0: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Distance in metres from (lon0, lat0) to each geometry, projected around that point."""
    counts = shapely.get_num_coordinates(geoms)
    ox, oy, sx = (np.repeat(a, counts) for a in (lon0, lat0, cos0 * METRES_PER_DEGREE))

    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.column_stack([(coords[:, 0] - ox) * sx, (coords[:, 1] - oy) * METRES_PER_DEGREE])

    projected = shapely.transform(geoms, project)
    origin = shapely.points(np.zeros(len(geoms)), np.zeros(len(geoms)))
    return np.asarray(shapely.distance(projected, origin), dtype=np.float64)
