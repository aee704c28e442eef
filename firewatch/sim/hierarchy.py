"""The synthetic hierarchy and the risk class of the demo grid's cells.

The hierarchy is SYNTHETIC: public village boundaries are not available for Quzhou, so townships,
villages and field teams are made up, with names that are clearly not real place names
("Township 05", "Village 05-03"):

- townships: Voronoi regions of `townships` seeded random points over the district, relaxed by a
  few Lloyd steps so that they are of comparable size; a cell belongs to the township of its
  centroid, and a detached piece of a township is handed to the neighbour it borders most;
- villages: groups of about `cells_per_village` contiguous cells of one township (seeded k-means on
  the cell centroids, then the same contiguity repair); one field team per village.

Risk class (`low` / `medium` / `high`) follows the terrain of Qujiang: the Qu river valley crosses
the middle of the district from west to east and is farmland and towns, the hills to the north
(Qianligang) and south (Xianxialing foothills) are forest. Each cell scores
`0.7 * d + 0.3 * noise`, where `d` is its distance from the east-west axis through the district's
centroid divided by the district's half-height (capped at 1) and `noise` is smooth seeded noise
(bilinear interpolation of uniform values on a 6 km lattice). The 35% of cells with the lowest
score are `low`, the 25% with the highest `high`, the rest `medium`.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from firewatch.sim.frame import FloatArray, Frame, IntArray

LOW_SHARE = 0.35
HIGH_SHARE = 0.25
NOISE_LATTICE_KM = 6.0

Borders = list[dict[int, float]]  # per cell: neighbour -> length of the shared border


def shared_borders(geoms: NDArray[np.object_]) -> Borders:
    """For each geometry, the length (degrees) of the border it shares with each neighbour."""
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    rings = shapely.boundary(geoms)
    lengths = shapely.length(shapely.intersection(rings[a], rings[b]))
    borders: Borders = [{} for _ in range(len(geoms))]
    for i, j, length in zip(a.tolist(), b.tolist(), lengths.tolist(), strict=True):
        if length > 1e-9:
            borders[i][j] = length
            borders[j][i] = length
    return borders


def townships(
    boundary: BaseGeometry,
    frame: Frame,
    points: FloatArray,
    borders: Borders,
    k: int,
    rng: np.random.Generator,
) -> IntArray:
    """Township label (0..k-1) of each cell: Voronoi of seeded points, Lloyd-relaxed."""
    k = min(k, len(points))
    minx, miny, maxx, maxy = boundary.bounds
    shapely.prepare(boundary)
    seeds: list[tuple[float, float]] = []
    while len(seeds) < k:
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(boundary, lon, lat):
            x, y = frame.to_km(np.array([lon]), np.array([lat]))
            seeds.append((float(x[0]), float(y[0])))
    labels = lloyd(points, np.array(seeds), iterations=6)
    return _contiguous(labels, borders, np.zeros(len(points), dtype=np.int64))


def villages(
    points: FloatArray, borders: Borders, town: IntArray, per_village: int, rng: np.random.Generator
) -> IntArray:
    """Village label of each cell: seeded k-means within each township, then made contiguous."""
    labels = np.zeros(len(points), dtype=np.int64)
    next_label = 0
    for t in np.unique(town):
        members = np.flatnonzero(town == t)
        k = max(1, round(len(members) / per_village))
        start = points[rng.choice(members, size=k, replace=False)]
        labels[members] = lloyd(points[members], start, iterations=12) + next_label
        next_label += k
    return _contiguous(labels, borders, town)


def lloyd(points: FloatArray, centers: FloatArray, iterations: int) -> IntArray:
    """Nearest-centre labels after a few Lloyd (k-means) steps from `centers`.

    A centre left without points jumps to the point farthest from its centre. Distances are
    dx² + dy² and means the sums of `cluster_means`, so the labels are those of the same steps
    written point by point (the demo's figures depend on them)."""
    centers = centers.copy()
    px, py = points[:, 0], points[:, 1]
    for step in range(iterations + 1):
        d2 = np.subtract.outer(px, centers[:, 0])
        d2 *= d2
        dy = np.subtract.outer(py, centers[:, 1])
        dy *= dy
        d2 += dy  # dx² + dy²
        labels = d2.argmin(axis=1)
        counts = np.bincount(labels, minlength=len(centers))
        for empty in np.flatnonzero(counts == 0):
            worst = int(d2[np.arange(len(points)), labels].argmax())
            centers[empty] = points[worst]
            ex, ey = px - centers[empty, 0], py - centers[empty, 1]
            d2[:, empty] = ex * ex + ey * ey
            labels = d2.argmin(axis=1)
        if step < iterations:
            means, filled = cluster_means(points, labels, len(centers))
            centers[filled] = means[filled]
    out: IntArray = labels.astype(np.int64)
    return out


def cluster_means(
    points: FloatArray, labels: IntArray, k: int
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """The mean point of each label 0..k-1, and which labels have points (the others' means
    are NaN). The same floats as `points[labels == c].mean(axis=0)`: numpy sums along axis 0
    one row after another, as bincount does."""
    counts = np.bincount(labels, minlength=k)
    filled = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.column_stack(
            [np.bincount(labels, weights=points[:, j], minlength=k) / counts for j in (0, 1)]
        )
    return means, filled


def _contiguous(labels: IntArray, borders: Borders, group: IntArray) -> IntArray:
    """Relabel detached pieces of a label to the same-group neighbour label they border most."""
    labels = labels.copy()
    for _ in range(20):
        changed = False
        for label in np.unique(labels):
            pieces = _components(np.flatnonzero(labels == label), borders)
            for piece in sorted(pieces, key=lambda p: (-len(p), min(p)))[1:]:
                labels[piece] = _best_neighbour(piece, labels, borders, group, labels.max() + 1)
                changed = True
        if not changed:
            return labels
    return labels


def _components(members: IntArray, borders: Borders) -> list[list[int]]:
    inside = set(members.tolist())
    seen: set[int] = set()
    pieces = []
    for start in members.tolist():
        if start in seen:
            continue
        piece, queue = [], deque([start])
        seen.add(start)
        while queue:
            i = queue.popleft()
            piece.append(i)
            for j in borders[i]:
                if j in inside and j not in seen:
                    seen.add(j)
                    queue.append(j)
        pieces.append(piece)
    return pieces


def _best_neighbour(
    piece: list[int], labels: IntArray, borders: Borders, group: IntArray, fresh: int
) -> int:
    own = labels[piece[0]]
    totals: dict[int, float] = {}
    for i in piece:
        for j, length in borders[i].items():
            if labels[j] != own and group[j] == group[i]:
                totals[int(labels[j])] = totals.get(int(labels[j]), 0.0) + length
    if not totals:
        return int(fresh)
    return max(totals, key=lambda lab: (totals[lab], -lab))


def risk(x: FloatArray, y: FloatArray, rng: np.random.Generator) -> list[str]:
    """Risk class of each cell from its distance to the valley axis plus smooth noise."""
    half_height = max((y.max() - y.min()) / 2.0, 1e-9)
    valley = np.minimum(np.abs(y) / half_height, 1.0)
    gx = np.arange(x.min() - NOISE_LATTICE_KM, x.max() + 2 * NOISE_LATTICE_KM, NOISE_LATTICE_KM)
    gy = np.arange(y.min() - NOISE_LATTICE_KM, y.max() + 2 * NOISE_LATTICE_KM, NOISE_LATTICE_KM)
    lattice = rng.uniform(size=(len(gy), len(gx)))
    fx, fy = (x - gx[0]) / NOISE_LATTICE_KM, (y - gy[0]) / NOISE_LATTICE_KM
    ix, iy = np.floor(fx).astype(int), np.floor(fy).astype(int)
    tx, ty = fx - ix, fy - iy
    noise = (
        lattice[iy, ix] * (1 - tx) * (1 - ty)
        + lattice[iy, ix + 1] * tx * (1 - ty)
        + lattice[iy + 1, ix] * (1 - tx) * ty
        + lattice[iy + 1, ix + 1] * tx * ty
    )
    score = 0.7 * valley + 0.3 * noise
    rank = np.argsort(np.argsort(score, kind="stable"), kind="stable") / max(len(score), 1)
    return ["low" if r < LOW_SHARE else "high" if r >= 1 - HIGH_SHARE else "medium" for r in rank]
