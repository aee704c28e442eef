"""Where a fire is, from the bearings of tower cameras that see its smoke (issue #12).

A camera knows where it stands and the direction of the smoke (a `Sight`), not where the fire
is. `triangulate` crosses the lines of sight of two or more camera sites; `line_of_sight` places
the fire on one camera's line; `best_fix` takes the sights of one time window, keeps the largest
set that agrees (one wild bearing among three or more is left out) and falls back to a line of
sight. Pure, on plain floats (a window offers a few sights: numpy costs more per call than it
saves on them); which sights form a window is the engine's business.

**The plane.** Lines of sight are great circles: geodesics of the ellipsoid stray from them by
centimetres over 15 km. Positions go to the conformal sphere (geodetic to conformal latitude,
which keeps angles, so bearings, exactly) and are projected from the sphere's centre onto the
plane tangent at the cameras' mean position (the gnomonic projection), where every great circle
is a straight line. Plane coordinates are metres at the tangent point (6 ppm long 15 km away).
Against WGS84 geodesics this is within a metre at 15 km (tests check it with Vincenty's
formulae). An equirectangular plane around the mean latitude would be 10-20 m off there, well
under the bearing error (1.5 degrees is 390 m at 15 km); this one costs a few lines more and
makes exact bearings give an exact fix.

**The fix.** Weighted least squares: the point p minimising sum_i w_i (n_i . (p - c_i))^2, the
squared perpendicular distances to the lines (camera c_i, unit normal n_i), with
w_i = 1 / (sigma * r_i)^2: a bearing error sigma (radians, 1-sigma) is a perpendicular error
sigma * r_i at the distance r_i along the ray, so far cameras count less. r_i comes from the
previous solution (one unweighted solve, then two reweighted ones). Sights from one site (cameras
within `SAME_SITE_M`) share one weight: a site counts once however many sights it sends.

**The uncertainty.** The covariance of p is C = (sum_i w_i n_i n_i^T)^-1 (sigma is inside the
w_i). `uncertainty_m` = `K95` * sqrt(largest eigenvalue of C): the radius of the circle around
the 95% error ellipse's long axis, so under the linearised Gaussian model it covers the true
position in at least 95% of cases: 96.4% at a 90-degree crossing, 98.5% at 20 and 45 degrees
over 4,000 seeded trials (tests/geo/test_sight.py checks 400). Never below `MIN_UNCERTAINTY_M`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from numbers import Real
from typing import Any, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
Along = TypeVar("Along", float, F64)

_A = 6_378_137.0  # WGS84 semi-major axis, m
_E = math.sqrt(6.694_379_990_14e-3)  # WGS84 first eccentricity
K95 = math.sqrt(-2.0 * math.log(0.05))  # 2.448: P(|e| <= K95 s) = 0.95 for a circular 2-D normal
MIN_UNCERTAINTY_M = 50.0  # camera survey, tower sway, the smoke column's base: no fix is better
SAME_SITE_M = 50.0  # cameras closer than this are one site: they cannot triangulate each other


class Method(StrEnum):
    """How a fix was found. (The engine's third way, `detection`, is a detection's own place.)"""

    TRIANGULATED = "triangulated"
    LINE_OF_SIGHT = "line_of_sight"


@dataclass(frozen=True, slots=True)
class Sight:
    """A camera's line of sight: where it stands (WGS84 degrees) and the bearing of the smoke,
    degrees clockwise from true north (any real value; taken modulo 360). `range_m`: how far this
    camera sees; None or NaN: unknown, the caller's `max_range_m` applies (it always caps)."""

    camera_lat: float
    camera_lon: float
    bearing_deg: float
    range_m: float | None = None


@dataclass(frozen=True, slots=True)
class Fix:
    """Where the fire is: the best estimate, the radius of its ~95% circle in metres, how it was
    found, and the positions (in the caller's sequence) of the sights that were used."""

    lat: float
    lon: float
    uncertainty_m: float
    method: Method
    sights: tuple[int, ...]


def triangulate(
    sights: Sequence[Sight], *, max_range_m: float, min_angle_deg: float, bearing_error_deg: float
) -> Fix | None:
    """The least-squares crossing of all usable `sights`, or None when there is no valid one.

    Valid: at least two sites; some pair of sites crossing well (`crosses_well`: shallower
    crossings are ill-conditioned, parallel lines never give a far fix); the fix ahead of every
    camera (positive distance along its ray) and within its range.
    Sights with a NaN or infinite position or bearing, a latitude at a pole or beyond, or a range
    <= 0 are ignored: bad data is no reason to raise. ValueError is for bad arguments only."""
    sigma, min_sin = _check(max_range_m, bearing_error_deg, min_angle_deg)
    rays = _Rays.of(sights, max_range_m)
    return None if rays is None else rays.solve(list(range(len(rays))), sigma, min_sin)


def line_of_sight(
    sight: Sight, *, max_range_m: float, bearing_error_deg: float, distance_m: float | None = None
) -> Fix | None:
    """One camera: the point `distance_m` along its line of sight (default: half its range R,
    which minimises the worst error over the visible stretch; pass a typical detection distance,
    e.g. from visibility, to use another; capped at R). The uncertainty covers every point of
    the ray from the camera to R, with K95 bearing errors across it at R:
    hypot(max(d, R - d), K95 * sigma * R); about R / 2, since along the ray nothing is known.
    None when the sight is unusable (see `triangulate`)."""
    sigma, _ = _check(max_range_m, bearing_error_deg, 0.0, distance_m=distance_m)
    rays = _Rays.of([sight], max_range_m)
    return None if rays is None else rays.line(sigma, distance_m)


def best_fix(
    sights: Sequence[Sight],
    *,
    max_range_m: float,
    min_angle_deg: float,
    bearing_error_deg: float,
    gate_sigma: float = 3.0,
    distance_m: float | None = None,
) -> Fix | None:
    """The best fix from the sights of one time window, or None when no sight is usable.

    Every pair of sites whose lines cross validly proposes its crossing. A sight agrees with a
    fix when the fix is ahead of the camera, in its range, and off its line by at most
    `gate_sigma` standard errors (its bearing error at that distance and the fix's own error,
    combined). Each proposal takes in every sight that agrees with the pair's crossing, then is
    refitted and drops its worst sight while one disagrees with its own fit; the one with the
    most sites wins (ties: the smallest sum of squared standardised offsets, then the proposal of
    the earliest sights: pairs that each agree only with themselves tie so) and is triangulated
    (if that fix is not valid, its pair is). Without a crossing: the line of sight of the first
    usable sight. So order the sights by preference. Two cameras nearly in line with the fire
    cannot tell which of two other sights is wrong: the earlier wins the tie."""
    sigma, min_sin = _check(
        max_range_m, bearing_error_deg, min_angle_deg, gate_sigma=gate_sigma, distance_m=distance_m
    )
    rays = _Rays.of(sights, max_range_m)
    if rays is None:
        return None
    for rows in rays.consensus(sigma, min_sin, gate_sigma):  # the agreeing set, its pair
        fix = rays.solve(rows, sigma, min_sin)
        if fix is not None:
            return fix
    first = rays.index[0]
    alone = _Rays.of([sights[first]], max_range_m)  # in its own plane, as `line_of_sight`
    return None if alone is None else replace(alone.line(sigma, distance_m), sights=(first,))


# -- cheap tests around one camera (equirectangular: metres-accurate within a camera's range,
# well under the bearing error): what the engine asks of many sights before it solves a few
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0


# a line bearing 90 degrees (east) as Aim.of draws it: its cosine is 6e-17, not 0
_EAST_UX, _EAST_UY = math.sin(math.radians(90.0)), math.cos(math.radians(90.0))


@dataclass(frozen=True, slots=True)
class Aim:
    """A sight as the cheap tests read it: where its camera stands, the cosine of that latitude
    and the unit direction (east, north) of its line. The engine asks these tests of each sight
    of its window many times (every crossing offered, every point near a line): its
    trigonometry is done once, here, and the tests give what `along_off` and `may_cross` give,
    to the bit."""

    lat: float
    lon: float
    cos_lat: float
    ux: float
    uy: float

    @classmethod
    def of(cls, sight: Sight) -> Aim:
        b = math.radians(sight.bearing_deg)
        cos_lat = math.cos(math.radians(sight.camera_lat))
        return cls(sight.camera_lat, sight.camera_lon, cos_lat, math.sin(b), math.cos(b))

    def along_off(self, lat: float, lon: float) -> tuple[float, float]:
        """`along_off` of this sight."""
        dx = (lon - self.lon) * _M_PER_DEG_LON * self.cos_lat
        dy = (lat - self.lat) * _M_PER_DEG_LAT
        return dx * self.ux + dy * self.uy, dx * self.uy - dy * self.ux

    def may_cross(self, other: Aim, reach_m: float, min_sin: float) -> bool:
        """`may_cross` of this sight and `other`, `min_sin` the sine of the minimum angle."""
        u1x, u1y, u2x, u2y = self.ux, self.uy, other.ux, other.uy
        cross = u1x * u2y - u1y * u2x
        if not crosses_well(cross, u1x * u2x + u1y * u2y, min_sin):
            return False
        # the other camera from this one: east, and north (off a line bearing 90, the right is
        # the south)
        dx = (other.lon - self.lon) * _M_PER_DEG_LON * self.cos_lat
        dy = (other.lat - self.lat) * _M_PER_DEG_LAT
        east, north = dx * _EAST_UX + dy * _EAST_UY, -(dx * _EAST_UY - dy * _EAST_UX)
        t1 = (east * u2y - north * u2x) / cross  # how far along this line, then the other's
        t2 = (east * u1y - north * u1x) / cross
        return 0 < t1 <= reach_m and 0 < t2 <= reach_m


def along_off(sight: Sight, lat: float, lon: float) -> tuple[float, float]:
    """How far (m) the point is along the camera's line of sight, and how far off it (signed:
    positive to the right of the line, looking along it)."""
    return Aim.of(sight).along_off(lat, lon)


def ahead(sight: Sight, along_m: Along) -> tuple[Along, Along]:
    """The points (lat, lon) `along_m` along the camera's line of sight (as `along_off`); one
    point or an array of them."""
    b = math.radians(sight.bearing_deg)
    lat = sight.camera_lat + along_m * math.cos(b) / _M_PER_DEG_LAT
    cos = math.cos(math.radians(sight.camera_lat))
    return lat, sight.camera_lon + along_m * math.sin(b) / (_M_PER_DEG_LON * cos)


def corridor(sight: Sight, reach_m: float, wide_m: float) -> tuple[float, float, float, float]:
    """The lat/lon box (south, west, north, east) that holds every point ahead of the camera
    within `reach_m` along its line of sight and `wide_m` off it (as `along_off` measures, with
    a metre to spare): where to look for what may lie on a line."""
    end_lat, end_lon = ahead(sight, reach_m)
    dlat = (wide_m + 1.0) / _M_PER_DEG_LAT
    dlon = (wide_m + 1.0) / (_M_PER_DEG_LON * math.cos(math.radians(sight.camera_lat)))
    return (
        min(sight.camera_lat, end_lat) - dlat,
        min(sight.camera_lon, end_lon) - dlon,
        max(sight.camera_lat, end_lat) + dlat,
        max(sight.camera_lon, end_lon) + dlon,
    )


@overload
def crosses_well(cross: float, dot: float, min_sin: float) -> bool: ...
@overload
def crosses_well(cross: F64, dot: F64, min_sin: float) -> NDArray[np.bool_]: ...
def crosses_well(cross: Any, dot: Any, min_sin: float) -> Any:
    """Whether lines of sight whose unit directions have these cross and dot products cross at a
    usable angle. Cameras looking the same way (bearings up to 90 degrees apart) need
    `min_sin`, the sine of the rules' minimum angle: their lines cross beyond both, at a distance
    of about the baseline B / sin(angle), so a bearing error moves the fix along the lines by
    about sigma B / sin(angle)^2. Cameras facing each other (more than 90 degrees apart) cross
    between them, at most B away, where that error is at most sigma B / sin(angle): the same
    bound is kept down to sin(angle) = min_sin^2 (3.8 degrees for a 15-degree rule). Two towers
    on either side of a fire see it along nearly one line; a 15-degree rule alone placed it twice.
    Whether the crossing is ahead of both cameras is for the caller (`solve`, `may_cross`).
    Floats or arrays alike (may_cross asks one pair at a time, per sight in the window)."""
    cross = abs(cross)
    return (cross >= min_sin) | ((dot < 0) & (cross >= min_sin * min_sin))


def may_cross(a: Sight, b: Sight, *, reach_m: float, min_angle_deg: float) -> bool:
    """Whether the two lines of sight cross well (`crosses_well`, `min_angle_deg` the rules'
    minimum angle), ahead of both cameras and within `reach_m` of each: a cheap test in the plane
    around `a`'s camera (give it some slack before `triangulate` or `best_fix`, which decide
    exactly). `Aim.may_cross` is the same test on sights whose trigonometry is done."""
    min_sin = math.sin(math.radians(min_angle_deg))
    return Aim.of(a).may_cross(Aim.of(b), reach_m, min_sin)


Vec = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class _Plane:
    """The gnomonic plane tangent to the conformal sphere at unit vector `o`, in metres at `o`."""

    o: Vec
    east: Vec
    north: Vec
    scale: float  # metres per radian at the tangent point

    @classmethod
    def at(cls, points: Sequence[Vec]) -> _Plane:
        """The plane for cameras at these unit vectors: tangent at their mean (`_plane_at`: the
        same, cached)."""
        mx, my, mz = (math.fsum(p[k] for p in points) for k in range(3))
        norm = math.sqrt(mx * mx + my * my + mz * mz)
        # the tangent point; the first camera when they cancel out
        o = (mx / norm, my / norm, mz / norm) if norm > 1e-6 * len(points) else points[0]
        chi, lam = math.asin(_clip(o[2])), math.atan2(o[1], o[0])
        phi = _geodetic(chi)
        prime_vertical = _A / math.sqrt(1 - (_E * math.sin(phi)) ** 2)
        sc, cc, sl, cl = math.sin(chi), math.cos(chi), math.sin(lam), math.cos(lam)
        east, north = (-sl, cl, 0.0), (-sc * cl, -sc * sl, cc)
        return cls(o, east, north, prime_vertical * math.cos(phi) / cc)

    def ray(self, p: Vec, d: Vec) -> tuple[float, float, float, float] | None:
        """The camera at unit vector `p` in the plane and the unit direction of its line of sight
        (unit tangent `d` at `p`): x, y, ux, uy; None when it cannot be drawn there (beyond the
        horizon, or a line with no direction in the plane)."""
        (ox, oy, oz), (ex, ey, ez), (nx, ny, nz) = self.o, self.east, self.north
        (px, py, pz), (tx, ty, tz) = p, d  # the dot products written out: a call each cost more
        w = px * ox + py * oy + pz * oz
        if not w > 0:
            return None
        qx, qy = (px * ex + py * ey + pz * ez) / w, (px * nx + py * ny + pz * nz) / w
        # derivative of P -> (P.east, P.north) / (P.o) at p along d, but for the factor 1 / w
        do = tx * ox + ty * oy + tz * oz
        dx, dy = (tx * ex + ty * ey + tz * ez) - qx * do, (tx * nx + ty * ny + tz * nz) - qy * do
        length = math.hypot(dx, dy)
        if not (length > 0 and math.isfinite(length)):
            return None
        x, y, ux, uy = qx * self.scale, qy * self.scale, dx / length, dy / length
        finite = math.isfinite(x) and math.isfinite(y) and math.isfinite(ux) and math.isfinite(uy)
        return (x, y, ux, uy) if finite else None

    def latlon(self, x: float, y: float) -> tuple[float, float]:
        x, y = x / self.scale, y / self.scale
        p = [o + x * e + y * n for o, e, n in zip(self.o, self.east, self.north, strict=True)]
        chi = math.asin(_clip(p[2] / math.sqrt(_dot3(p, p))))
        lon = math.degrees(math.atan2(p[1], p[0]))
        return math.degrees(_geodetic(chi)), (lon + 180.0) % 360.0 - 180.0


@dataclass(frozen=True, slots=True)
class _Rays:
    """The usable sights in the plane, one list entry per ray: the camera (x, y), the unit
    direction (ux, uy) of its line (its normal is (uy, -ux)), the line's distance from the
    origin along that normal (`fit` reads it for every fit), its reach (range capped by
    max_range_m), its site (the first ray of the same site) and its index in the caller's
    sequence. Plain floats: a window offers a few sights, and numpy's cost per call on arrays of
    a few rows was most of the engine's time on a fire-dense stream (benchmarks/README.md)."""

    plane: _Plane
    x: list[float]
    y: list[float]
    ux: list[float]
    uy: list[float]
    normal: list[float]
    reach: list[float]
    site: list[int]
    index: list[int]

    @classmethod
    def of(cls, sights: Sequence[Sight], max_range_m: float) -> _Rays | None:
        if isinstance(sights, str | bytes) or not isinstance(sights, Sequence):
            raise ValueError(f"sights must be a sequence of Sight, got {type(sights).__name__}")
        usable: list[tuple[int, float, tuple[Vec, Vec]]] = []
        for k, s in enumerate(sights):
            if not isinstance(s, Sight):
                raise ValueError(f"sights[{k}] must be a Sight, got {type(s).__name__}")
            lat, lon, bearing, own = _numbers(s)
            reach = max_range_m if math.isnan(own) else min(own, max_range_m)
            finite = math.isfinite(lat) and math.isfinite(lon) and math.isfinite(bearing)
            if finite and abs(lat) < 90 and reach > 0:
                usable.append((k, reach, _on_sphere(lat, lon, bearing)))
        if not usable:
            return None
        plane = _plane_at(tuple(camera for _, _, (camera, _) in usable))
        rays = cls(plane, [], [], [], [], [], [], [], [])
        for k, reach, (camera, tangent) in usable:
            drawn = plane.ray(camera, tangent)
            if drawn is not None:
                rays.add(*drawn, reach, k)
        return rays if rays.x else None

    def add(self, x: float, y: float, ux: float, uy: float, reach: float, index: int) -> None:
        """One more ray; its site is the first ray within SAME_SITE_M of its camera (itself when
        there is none before it)."""
        site = len(self.x)
        for j, (a, b) in enumerate(zip(self.x, self.y, strict=True)):
            if math.hypot(x - a, y - b) < SAME_SITE_M:
                site = j
                break
        self.site.append(site)
        self.x.append(x)
        self.y.append(y)
        self.ux.append(ux)
        self.uy.append(uy)
        self.normal.append(uy * x + -ux * y)
        self.reach.append(reach)
        self.index.append(index)

    def __len__(self) -> int:
        return len(self.x)

    def line(self, sigma: float, distance_m: float | None) -> Fix:
        """The line-of-sight fix of the first ray (see `line_of_sight`)."""
        reach = self.reach[0]
        d = reach / 2 if distance_m is None else min(distance_m, reach)
        lat, lon = self.plane.latlon(self.x[0] + d * self.ux[0], self.y[0] + d * self.uy[0])
        radius = max(math.hypot(max(d, reach - d), K95 * sigma * reach), MIN_UNCERTAINTY_M)
        return Fix(lat, lon, radius, Method.LINE_OF_SIGHT, (0,))

    def crosses(self, i: int, j: int, min_sin: float) -> bool:
        """Whether rays i and j are of two sites and their lines cross well (`crosses_well`)."""
        ux, uy = self.ux, self.uy
        cross = ux[i] * uy[j] - uy[i] * ux[j]
        dot = ux[i] * ux[j] + uy[i] * uy[j]
        return self.site[i] != self.site[j] and crosses_well(cross, dot, min_sin)

    def solve(self, rows: list[int], sigma: float, min_sin: float) -> Fix | None:
        """The weighted least-squares fix of rays `rows`, or None when it is not valid."""
        if not any(self.crosses(i, j, min_sin) for i, j in itertools.combinations(rows, 2)):
            return None  # one site, or no pair of sites crossing well
        along = [1.0] * len(self)  # first unweighted, then weighted by distance
        for _ in range(3):
            fit = self.fit(rows, along, sigma)
            along = self.alongs(fit)
        px, py = fit[0], fit[1]
        ahead = all(0 < along[i] <= self.reach[i] for i in rows)
        if not (math.isfinite(px) and math.isfinite(py) and ahead):
            return None
        radius = K95 * math.sqrt(_largest_eigenvalue(fit[2], fit[3], fit[4]))
        lat, lon = self.plane.latlon(px, py)
        used = tuple(sorted(self.index[i] for i in rows))
        return Fix(lat, lon, max(radius, MIN_UNCERTAINTY_M), Method.TRIANGULATED, used)

    def consensus(self, sigma: float, min_sin: float, gate: float) -> list[list[int]]:
        """The rays of the best proposal (see `best_fix`) and the pair that proposed it. The
        proposals refit together: each round refits every one, and they stop dropping sights
        when none of them dropped one."""
        n = len(self)
        if n == 2:  # one pair: it is the proposal, and `solve` checks its crossing
            return [[0, 1]]
        pairs = [
            (i, j) for i, j in itertools.combinations(range(n), 2) if self.crosses(i, j, min_sin)
        ]
        if not pairs:
            return []
        every, gate2 = range(n), gate * gate
        members: list[list[int]] = []
        alongs: list[list[float]] = []
        for i, j in pairs:
            along = self.alongs(self.fit([i, j], [1.0] * n, sigma))  # the pair's crossing
            along, z2 = self.offsets([i, j], along, sigma)  # and its errors, weighted
            crossing = math.isfinite(z2[i]) and math.isfinite(z2[j])  # ahead, in range
            members.append([m for m in every if crossing and z2[m] <= gate2])
            alongs.append(along)
        for _ in range(n - 2):  # drop the worst while one disagrees (all proposals at once)
            dropped = False
            for k, member in enumerate(members):
                if not member:  # nothing to refit (the fit of no rays is NaN: no use of it)
                    continue
                alongs[k], z2 = self.offsets(member, alongs[k], sigma)
                worst = max(member, key=lambda m: (z2[m], -m))  # the first of equals
                if z2[worst] > gate2:
                    member.remove(worst)
                    dropped = True
            if not dropped:
                break
        best: tuple[int, float, int] | None = None  # most sites, least offsets, first proposal
        for k, member in enumerate(members):
            z2 = self.offsets(member, alongs[k], sigma)[1] if member else []
            # offsets equal to 1e-9 are a tie (a lone pair's are zero but for rounding): the
            # first proposal wins, and pairs come in the sights' order: the earliest sights'
            key = (
                -len({self.site[m] for m in member}),
                round(math.fsum(z2[m] for m in member), 9),
                k,
            )
            if best is None or key < best:
                best = key
        assert best is not None
        k = best[2]
        return [members[k], list(pairs[k])]

    def fit(
        self, rows: list[int], along: Mapping[int, float] | Sequence[float], sigma: float
    ) -> tuple[float, ...]:
        """Weighted least squares of rays `rows`, the weights taken at distances `along` (by
        ray): the point (x, y) and its covariance (xx, xy, yy); NaN when there is none."""
        site, ux, uy, normal = self.site, self.ux, self.uy, self.normal
        count: dict[int, int] = {}
        for i in rows:
            count[site[i]] = count.get(site[i], 0) + 1
        a = b = d = r0 = r1 = 0.0
        for i in rows:
            spread = sigma * max(along[i], MIN_UNCERTAINTY_M)
            variance = count[site[i]] * spread * spread  # a site counts once: its share
            w = 1.0 / variance if variance > 0 else math.inf
            nx, ny = uy[i], -ux[i]
            a += w * nx * nx
            b += w * nx * ny
            d += w * ny * ny
            wn = w * normal[i]
            r0 += wn * nx
            r1 += wn * ny
        det = a * d - b * b
        if not det > 0:
            return (math.nan,) * 5
        xx, xy, yy = d / det, -b / det, a / det
        return xx * r0 + xy * r1, xy * r0 + yy * r1, xx, xy, yy

    def offsets(
        self, rows: list[int], along: Sequence[float], sigma: float
    ) -> tuple[list[float], list[float]]:
        """Fit rays `rows`; each ray's distance along to the fit, and its squared standardised
        offset from it (bearing error at that distance and the fit's error combined; inf: behind
        the camera or out of its range)."""
        px, py, xx, xy, yy = self.fit(rows, along, sigma)
        alongs, z2 = [], []
        for x, y, ux, uy, reach in zip(self.x, self.y, self.ux, self.uy, self.reach, strict=True):
            dx, dy = px - x, py - y  # this loop is most of `best_fix`: no call per ray
            a, off = dx * ux + dy * uy, dx * uy - dy * ux
            alongs.append(a)
            if not 0 < a <= reach:
                z2.append(math.inf)
                continue
            spread = sigma * max(a, MIN_UNCERTAINTY_M)
            nx, ny = uy, -ux
            z = off * off / (spread * spread + nx * (xx * nx + xy * ny) + ny * (xy * nx + yy * ny))
            z2.append(math.inf if math.isnan(z) else z)
        return alongs, z2

    def alongs(self, fit: tuple[float, ...]) -> list[float]:
        """How far along each ray the fit's point is (as `offsets`, without the offsets)."""
        px, py = fit[0], fit[1]
        return [
            (px - x) * ux + (py - y) * uy
            for x, y, ux, uy in zip(self.x, self.y, self.ux, self.uy, strict=True)
        ]


def _check(
    max_range_m: float, bearing_error_deg: float, min_angle_deg: float, **positive: float | None
) -> tuple[float, float]:
    """Sigma in radians and the sine of the minimum crossing angle; ValueError names the bad
    argument (`positive`: more arguments that must be None or > 0)."""
    _need("max_range_m", max_range_m, 0.0)
    _need("min_angle_deg", min_angle_deg, 0.0, 90.0, closed=True)
    for name, value in positive.items():
        if value is not None:
            _need(name, value, 0.0)
    sigma = math.radians(_need("bearing_error_deg", bearing_error_deg, 0.0, 90.0))
    return sigma, math.sin(math.radians(min_angle_deg))


def _need(name: str, value: object, lo: float, hi: float = math.inf, closed: bool = False) -> float:
    if type(value) is float:  # the engine's every call: the ABC test costs more than the rest
        x = value
    else:
        x = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    if (lo <= x if closed else lo < x) and x < hi:
        return x
    low = "[" if closed else "("
    raise ValueError(f"{name} must be a number in {low}{lo:g}, {hi:g}), got {value!r}")


_FIELDS = ("camera_lat", "camera_lon", "bearing_deg", "range_m")


def _numbers(sight: Sight) -> tuple[float, float, float, float]:
    """The fields of a sight (`_FIELDS`) as floats, as `_number` reads each: plain floats (and a
    range None) as they are, without a call per field."""
    lat, lon, bearing, own = sight.camera_lat, sight.camera_lon, sight.bearing_deg, sight.range_m
    if type(lat) is float and type(lon) is float and type(bearing) is float:
        if own is None:
            return lat, lon, bearing, math.nan
        if type(own) is float:
            return lat, lon, bearing, own
    lat, lon, bearing, own = (_number(sight, f) for f in _FIELDS)
    return lat, lon, bearing, own


def _number(sight: Sight, field: str) -> float:
    """One field of a sight as a float (None and NaN alike as NaN); ValueError names it."""
    value = getattr(sight, field)
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Sight.{field} must be a number: {e}") from None


@functools.lru_cache(maxsize=16_384)
def _on_sphere(lat: float, lon: float, bearing_deg: float) -> tuple[Vec, Vec]:
    """A camera's unit vector on the conformal sphere and the unit tangent there along its line
    of sight: all a plane needs of a sight. Cached: the engine offers each sight of its window
    to many crossings."""
    chi, lam = _conformal(math.radians(lat)), math.radians(lon)
    b = math.radians(bearing_deg % 360.0)
    cc, sc, cl, sl = math.cos(chi), math.sin(chi), math.cos(lam), math.sin(lam)
    cb, sb = math.cos(b), math.sin(b)
    # the tangent: cos(b) north + sin(b) east, north = (-sc cl, -sc sl, cc), east = (-sl, cl, 0)
    return (cc * cl, cc * sl, sc), (-cb * sc * cl - sb * sl, -cb * sc * sl + sb * cl, cb * cc)


@functools.lru_cache(maxsize=4_096)
def _plane_at(cameras: tuple[Vec, ...]) -> _Plane:
    """`_Plane.at` these cameras. Cached: a window's sights come from a few towers, so the same
    sets of cameras (and each camera alone, for its line of sight) are drawn again and again."""
    return _Plane.at(cameras)


def _conformal(phi: float) -> float:
    """Geodetic to conformal latitude (radians): both give the same Mercator ordinate psi."""
    psi = math.asinh(math.tan(phi)) - _E * math.atanh(_E * math.sin(phi))
    return math.atan(math.sinh(psi))


def _geodetic(chi: float) -> float:
    """Conformal to geodetic latitude (radians), of one point."""
    psi, phi = math.asinh(math.tan(chi)), chi
    for _ in range(6):  # each step gains a factor e^2 = 0.0067
        phi = math.atan(math.sinh(psi + _E * math.atanh(_E * math.sin(phi))))
    return phi


def _largest_eigenvalue(xx: float, xy: float, yy: float) -> float:
    """The larger eigenvalue of the symmetric 2x2 matrix [xx xy; xy yy]."""
    return (xx + yy) / 2 + math.hypot((xx - yy) / 2, xy)


def _dot3(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _clip(x: float) -> float:
    """Into [-1, 1] (rounding takes a unit vector's component a hair beyond)."""
    return max(-1.0, min(1.0, x))
