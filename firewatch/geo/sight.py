"""Where a fire is, from the bearings of tower cameras that see its smoke (issue #12).

A camera knows where it stands and the direction of the smoke (a `Sight`), not where the fire
is. `triangulate` crosses the lines of sight of two or more camera sites; `line_of_sight` places
the fire on one camera's line; `best_fix` takes the sights of one time window, keeps the largest
set that agrees (one wild bearing among three or more is left out) and falls back to a line of
sight. Pure and vectorised; which sights form a window is the engine's business.

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

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from numbers import Real
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
Ints = NDArray[np.intp]

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
    with np.errstate(all="ignore"):
        rays = _Rays.of(sights, max_range_m)
        return None if rays is None else rays.solve(np.arange(len(rays.reach)), sigma, min_sin)


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
    with np.errstate(all="ignore"):
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
    most sites wins (ties: the smallest sum of squared standardised offsets) and is triangulated
    (if that fix is not valid, its pair is). Without a crossing: the line of sight of the first
    usable sight, so order the sights by preference. Two cameras nearly in line with the fire
    cannot tell which of two other sights is wrong: either wins the tie."""
    sigma, min_sin = _check(
        max_range_m, bearing_error_deg, min_angle_deg, gate_sigma=gate_sigma, distance_m=distance_m
    )
    with np.errstate(all="ignore"):
        rays = _Rays.of(sights, max_range_m)
        if rays is None:
            return None
        for rows in rays.consensus(sigma, min_sin, gate_sigma):  # the agreeing set, its pair
            fix = rays.solve(rows, sigma, min_sin)
            if fix is not None:
                return fix
        first = int(rays.index[0])
        alone = _Rays.of([sights[first]], max_range_m)  # in its own plane, as `line_of_sight`
        return None if alone is None else replace(alone.line(sigma, distance_m), sights=(first,))


# -- cheap tests around one camera (equirectangular: metres-accurate within a camera's range,
# well under the bearing error): what the engine asks of many sights before it solves a few
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0


def along_off(sight: Sight, lat: float, lon: float) -> tuple[float, float]:
    """How far (m) the point is along the camera's line of sight, and how far off it (signed:
    positive to the right of the line, looking along it)."""
    dx = (lon - sight.camera_lon) * _M_PER_DEG_LON * math.cos(math.radians(sight.camera_lat))
    dy = (lat - sight.camera_lat) * _M_PER_DEG_LAT
    b = math.radians(sight.bearing_deg)
    ux, uy = math.sin(b), math.cos(b)
    return dx * ux + dy * uy, dx * uy - dy * ux


def ahead(sight: Sight, along_m: F64) -> tuple[F64, F64]:
    """The points (lat, lon) `along_m` along the camera's line of sight (as `along_off`)."""
    b = math.radians(sight.bearing_deg)
    lat = sight.camera_lat + along_m * math.cos(b) / _M_PER_DEG_LAT
    cos = math.cos(math.radians(sight.camera_lat))
    return lat, sight.camera_lon + along_m * math.sin(b) / (_M_PER_DEG_LON * cos)


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
    exactly)."""
    east, north = along_off(Sight(a.camera_lat, a.camera_lon, 90.0), b.camera_lat, b.camera_lon)
    north = -north  # off a line bearing 90 (east), the right is the south
    b1, b2 = math.radians(a.bearing_deg), math.radians(b.bearing_deg)
    u1, u2 = (math.sin(b1), math.cos(b1)), (math.sin(b2), math.cos(b2))
    cross = u1[0] * u2[1] - u1[1] * u2[0]
    dot = u1[0] * u2[0] + u1[1] * u2[1]
    min_sin = math.sin(math.radians(min_angle_deg))
    if not crosses_well(cross, dot, min_sin):
        return False
    t1 = (east * u2[1] - north * u2[0]) / cross  # how far along a's line, then b's
    t2 = (east * u1[1] - north * u1[0]) / cross
    return 0 < t1 <= reach_m and 0 < t2 <= reach_m


@dataclass(frozen=True)
class _Plane:
    """The gnomonic plane tangent to the conformal sphere at unit vector `o`, in metres at `o`."""

    o: F64
    east: F64
    north: F64
    scale: float  # metres per radian at the tangent point

    @classmethod
    def at(cls, lat: F64, lon: F64) -> _Plane:
        p, _, _ = _frame(_conformal(np.radians(lat)), np.radians(lon))
        mean = p.sum(axis=0)  # the tangent point; the first camera when they cancel out
        o = mean / np.linalg.norm(mean) if np.linalg.norm(mean) > 1e-6 * len(p) else p[0]
        chi, lam = math.asin(float(o[2])), math.atan2(float(o[1]), float(o[0]))
        phi = float(_geodetic(np.array(chi)))
        prime_vertical = _A / math.sqrt(1 - (_E * math.sin(phi)) ** 2)
        _, east, north = _frame(np.array(chi), np.array(lam))
        return cls(o, east, north, prime_vertical * math.cos(phi) / math.cos(chi))

    def rays(self, lat: F64, lon: F64, bearing_deg: F64) -> tuple[F64, F64]:
        """Camera positions (n, 2) and the unit directions (n, 2) of their lines of sight."""
        b = np.radians(bearing_deg)
        p, east, north = _frame(_conformal(np.radians(lat)), np.radians(lon))
        d = np.cos(b)[:, None] * north + np.sin(b)[:, None] * east  # tangent direction
        w = p @ self.o
        q = np.column_stack((p @ self.east, p @ self.north)) / w[:, None]
        # derivative of P -> (P.east, P.north) / (P.o) at p along d, but for the factor 1 / w
        dq = np.column_stack((d @ self.east, d @ self.north)) - q * (d @ self.o)[:, None]
        u = dq / np.linalg.norm(dq, axis=1)[:, None]
        return np.where(w[:, None] > 0, q * self.scale, np.nan), u  # w <= 0: beyond the horizon

    def latlon(self, xy: F64) -> tuple[float, float]:
        p = self.o + (xy[0] * self.east + xy[1] * self.north) / self.scale
        chi = math.asin(float(p[2] / np.linalg.norm(p)))
        lon = math.degrees(math.atan2(float(p[1]), float(p[0])))
        return math.degrees(float(_geodetic(np.array(chi)))), (lon + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class _Rays:
    """The usable sights in the plane: cameras `xy`, directions `u`, normals `n`, each reach
    (range capped by max_range_m), site (first sight of the same site; `sites`: one-hot, ray by
    site) and index in the caller's sequence."""

    plane: _Plane
    xy: F64
    u: F64
    n: F64
    reach: F64
    site: Ints
    sites: Ints
    index: Ints
    nn: F64  # each ray's n n^T, flattened (rays, 4): the normal equations' terms
    nxy: F64  # each ray's n . camera

    @classmethod
    def of(cls, sights: Sequence[Sight], max_range_m: float) -> _Rays | None:
        if isinstance(sights, str | bytes) or not isinstance(sights, Sequence):
            raise ValueError(f"sights must be a sequence of Sight, got {type(sights).__name__}")
        for k, s in enumerate(sights):
            if not isinstance(s, Sight):
                raise ValueError(f"sights[{k}] must be a Sight, got {type(s).__name__}")
        fields = ("camera_lat", "camera_lon", "bearing_deg", "range_m")
        lat, lon, bearing, own = (_column(sights, f) for f in fields)
        reach = np.fmin(own, max_range_m)  # NaN (unknown) own range: max_range_m
        ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(bearing) & (np.abs(lat) < 90)
        index = np.flatnonzero(ok & (reach > 0))
        if index.size == 0:
            return None
        plane = _Plane.at(lat[index], lon[index])
        xy, u = plane.rays(lat[index], lon[index], bearing[index] % 360.0)
        keep = np.isfinite(xy).all(axis=1) & np.isfinite(u).all(axis=1)
        if not keep.any():
            return None
        xy, u, index = xy[keep], u[keep], index[keep]
        gap = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
        site = np.argmax(gap < SAME_SITE_M, axis=1)
        n = np.column_stack((u[:, 1], -u[:, 0]))
        sites = (site[:, None] == np.arange(site.size)).astype(np.intp)
        nn = (n[:, :, None] * n[:, None, :]).reshape(-1, 4)
        return cls(plane, xy, u, n, reach[index], site, sites, index, nn, (n * xy).sum(axis=1))

    def line(self, sigma: float, distance_m: float | None) -> Fix:
        """The line-of-sight fix of the first ray (see `line_of_sight`)."""
        reach = float(self.reach[0])
        d = reach / 2 if distance_m is None else min(distance_m, reach)
        lat, lon = self.plane.latlon(self.xy[0] + d * self.u[0])
        radius = max(math.hypot(max(d, reach - d), K95 * sigma * reach), MIN_UNCERTAINTY_M)
        return Fix(lat, lon, radius, Method.LINE_OF_SIGHT, (0,))

    def solve(self, rows: Ints, sigma: float, min_sin: float) -> Fix | None:
        """The weighted least-squares fix of rays `rows`, or None when it is not valid."""
        site, u = self.site[rows], self.u[rows]
        other = site[:, None] != site[None, :]
        well = crosses_well(_cross(u[:, None], u[None, :]), _dot(u[:, None], u[None, :]), min_sin)
        if not well[other].any():
            return None  # one site, or no pair of sites crossing well
        member = np.isin(np.arange(len(self.site)), rows)[None, :]
        along = np.ones(member.shape)  # first unweighted, then weighted by distance
        for _ in range(3):
            p, cov = self.fit(member, along, sigma)
            along = self.towards(p)[0]
        r = along[0, rows]
        if not (np.isfinite(p).all() and (r > 0).all() and (r <= self.reach[rows]).all()):
            return None
        radius = K95 * math.sqrt(float(np.linalg.eigvalsh(cov[0])[-1]))
        lat, lon = self.plane.latlon(p[0])
        used = tuple(sorted(self.index[rows].tolist()))
        return Fix(lat, lon, max(radius, MIN_UNCERTAINTY_M), Method.TRIANGULATED, used)

    def consensus(self, sigma: float, min_sin: float, gate: float) -> list[Ints]:
        """The rays of the best proposal (see `best_fix`) and the pair that proposed it."""
        i, j = np.triu_indices(len(self.reach), k=1)
        good = self.site[i] != self.site[j]
        good &= crosses_well(_cross(self.u[i], self.u[j]), _dot(self.u[i], self.u[j]), min_sin)
        i, j, rows = i[good], j[good], np.arange(np.count_nonzero(good))
        if rows.size == 0:
            return []
        member = np.zeros((rows.size, len(self.reach)), dtype=bool)
        member[rows, i] = member[rows, j] = True
        along, _ = self.offsets(member, np.ones(member.shape), sigma)  # the pairs' crossings
        along, z2 = self.offsets(member, along, sigma)  # and their errors, weighted
        crossing = np.isfinite(z2[rows, i]) & np.isfinite(z2[rows, j])  # ahead, in range
        member = crossing[:, None] & (z2 <= gate**2)  # all that agree with the pair's crossing
        for _ in range(len(self.reach) - 2):  # drop the worst while one disagrees (all at once)
            along, z2 = self.offsets(member, along, sigma)
            worst = np.argmax(np.where(member, z2, -1.0), axis=1)
            drop = member[rows, worst] & (z2[rows, worst] > gate**2)
            if not drop.any():
                break
            member[rows[drop], worst[drop]] = False
        _, z2 = self.offsets(member, along, sigma)
        score = ((member.astype(np.intp) @ self.sites) > 0).sum(axis=1)  # agreeing sites
        best = np.flatnonzero(score == score.max())
        k = best[np.argmin(np.where(member, z2, 0.0)[best].sum(axis=1))]
        return [np.flatnonzero(member[k]), np.array([i[k], j[k]])]

    def fit(self, member: NDArray[np.bool_], along: F64, sigma: float) -> tuple[F64, F64]:
        """Weighted least squares for each row of `member` (a set of rays), the weights taken at
        distances `along` (rows, rays): the points (rows, 2) and their covariances (rows, 2, 2)."""
        count = member.astype(np.intp) @ self.sites
        share = member / np.maximum(count[:, self.site], 1)  # a site counts once
        w = share / (sigma * np.maximum(along, MIN_UNCERTAINTY_M)) ** 2
        a, b, c, d = (w @ self.nn).T  # sum_i w_i n_i n_i^T, as rows of 4
        det = a * d - b * c
        cov = np.empty((len(w), 2, 2))
        cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 0], cov[:, 1, 1] = d, -b, -c, a
        cov = np.where(det[:, None, None] > 0, cov / det[:, None, None], np.nan)
        r0, r1 = ((w * self.nxy) @ self.n).T
        p = np.empty((len(w), 2))
        p[:, 0] = cov[:, 0, 0] * r0 + cov[:, 0, 1] * r1
        p[:, 1] = cov[:, 1, 0] * r0 + cov[:, 1, 1] * r1
        return p, cov

    def offsets(self, member: NDArray[np.bool_], along: F64, sigma: float) -> tuple[F64, F64]:
        """Fit each set; each ray's distance along to each fit, and squared standardised offset
        from it (bearing error at that distance and the fit's error combined; inf: behind the
        camera or out of its range)."""
        p, cov = self.fit(member, along, sigma)
        along, off = self.towards(p)
        var = (sigma * np.maximum(along, MIN_UNCERTAINTY_M)) ** 2
        z2 = off**2 / (var + np.einsum("mi,kij,mj->km", self.n, cov, self.n))
        z2[(along <= 0) | (along > self.reach) | np.isnan(z2)] = np.inf
        return along, z2

    def towards(self, p: F64) -> tuple[F64, F64]:
        """How far along each ray (columns) each point (rows) is, and how far off it."""
        d = p[:, None, :] - self.xy
        return (d * self.u).sum(axis=2), (d * self.n).sum(axis=2)


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
    x = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    if (lo <= x if closed else lo < x) and x < hi:
        return x
    low = "[" if closed else "("
    raise ValueError(f"{name} must be a number in {low}{lo:g}, {hi:g}), got {value!r}")


def _column(sights: Sequence[Sight], field: str) -> F64:
    """One field of every sight as floats (None and NaN alike as NaN); ValueError names it."""
    try:
        return np.array([getattr(s, field) for s in sights], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Sight.{field} must be a number: {e}") from None


def _conformal(phi: F64) -> F64:
    """Geodetic to conformal latitude (radians): both give the same Mercator ordinate psi."""
    psi = np.arcsinh(np.tan(phi)) - _E * np.arctanh(_E * np.sin(phi))
    return np.arctan(np.sinh(psi))


def _geodetic(chi: F64) -> F64:
    psi, phi = np.arcsinh(np.tan(chi)), chi
    for _ in range(6):  # each step gains a factor e^2 = 0.0067
        phi = np.arctan(np.sinh(psi + _E * np.arctanh(_E * np.sin(phi))))
    return phi


def _frame(chi: F64, lam: F64) -> tuple[F64, F64, F64]:
    """Unit vectors of the points (conformal latitude chi, longitude lam), east and north there."""
    cc, sc, cl, sl = np.cos(chi), np.sin(chi), np.cos(lam), np.sin(lam)
    shape = (*np.shape(chi), 3)
    p, east, north = np.empty(shape), np.zeros(shape), np.empty(shape)
    p[..., 0], p[..., 1], p[..., 2] = cc * cl, cc * sl, sc
    east[..., 0], east[..., 1] = -sl, cl
    north[..., 0], north[..., 1], north[..., 2] = -sc * cl, -sc * sl, cc
    return p, east, north


def _cross(a: F64, b: F64) -> F64:
    """The z of the cross products of 2-D vectors (last axis), broadcast."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _dot(a: F64, b: F64) -> F64:
    """The dot products of 2-D vectors (last axis), broadcast."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]
