"""Where and when things happen: satellite passes, fires and background noise.

Fires come in kinds, cycled in this order:

- `full`: near a sensor, seen by sensors, cameras and a satellite pass (its start is set 0.5-2.5 h
  before a pass in the window);
- `quiet`: a small smouldering fire beside one isolated sensor, seen only by that sensor's repeated
  readings and one camera suspect (tests corroboration);
- `cameras`: caught early by cameras (and any sensor close by), put out before a satellite sees it;
- `remote`: far from any sensor, seen by cameras and a satellite pass (a night pass if possible).

Fires keep 8 km apart, 6 km from the static heat source and 2 km inside the grid (relaxed only if
the grid is too small for that). Noise events keep 5 km and an hour away from fires and from each
other, so no noise event can corroborate another or join a fire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import shapely

from firewatch.errors import FirewatchError
from firewatch.sim import draws
from firewatch.sim.sensors import SensorBulk
from firewatch.sim.timefmt import DAY_S, Stamps
from firewatch.sim.world import (
    CAMERA_RANGE_KM,
    BoolArray,
    FloatArray,
    IntArray,
    SimGrid,
    World,
)

KINDS = ("full", "quiet", "cameras", "full", "remote")
SATELLITE_SEEN = frozenset({"full", "remote"})
HOUR = 3600
MINUTE = 60
PLACE_TRIES = 1000  # tries at each relax level of a fire's place (see _fire_place)

# (satellite, instrument, device id, local pass time hh, mm)
PASS_TIMES = (
    ("Terra", "MODIS", "Terra-MODIS", 10, 30),
    ("Terra", "MODIS", "Terra-MODIS", 22, 30),
    ("Aqua", "MODIS", "Aqua-MODIS", 13, 30),
    ("Aqua", "MODIS", "Aqua-MODIS", 1, 30),
    ("N", "VIIRS", "N-VIIRS", 13, 0),
    ("N", "VIIRS", "N-VIIRS", 1, 0),
)


@dataclass(frozen=True)
class Pass:
    satellite: str
    instrument: str
    device: str
    t: int  # epoch seconds
    night: bool  # nominal pass time between 19:00 and 06:00 local

    def pixel_km(self, rng: np.random.Generator) -> tuple[float, float]:
        """(scan, track) of a pixel of this pass: MODIS about 1 km, VIIRS 375 m."""
        if self.instrument == "VIIRS":
            return float(rng.uniform(0.375, 0.55)), float(rng.uniform(0.375, 0.45))
        return float(rng.uniform(1.0, 1.5)), float(rng.uniform(1.0, 1.25))


@dataclass(frozen=True)
class Fire:
    name: str
    kind: str
    x: float  # km
    y: float
    t0: int  # ignition, epoch seconds
    t1: int  # put out
    cell: int
    sensor: int  # the sensor beside a `quiet` fire; -1 otherwise

    def progress(self, t: float) -> float:
        return min(max((t - self.t0) / max(self.t1 - self.t0, 1), 0.0), 1.0)


@dataclass(frozen=True)
class Noise:
    kind: str  # sensor_spike | camera_weak | camera_suspect | satellite_low
    t: int
    x: float
    y: float
    device: int  # sensor or camera index; for satellite_low the pass index
    step: int = -1  # for sensor_spike: the reading overwritten


@dataclass
class Busy:
    """Places and times already taken: (x, y, t_lo, t_hi, radius_km)."""

    regions: list[tuple[float, float, float, float, float]] = field(default_factory=list)

    def add(self, x: float, y: float, t_lo: float, t_hi: float, radius: float) -> None:
        self.regions.append((x, y, t_lo, t_hi, radius))

    def free(self, x: float, y: float, t: float) -> bool:
        return all(
            not (lo <= t <= hi) or np.hypot(x - bx, y - by) >= r
            for bx, by, lo, hi, r in self.regions
        )


def satellite_passes(
    stamps: Stamps, start_s: int, end_s: int, rng: np.random.Generator
) -> list[Pass]:
    """The passes in [start, end): nominal local times give or take up to 8 minutes."""
    passes = []
    first_day = (start_s + stamps.offset_s) // DAY_S - 1
    last_day = (end_s + stamps.offset_s) // DAY_S + 1
    for day in range(first_day, last_day + 1):
        for satellite, instrument, device, hh, mm in PASS_TIMES:
            jitter = int(rng.integers(-8 * MINUTE, 8 * MINUTE + 1))
            t = day * DAY_S - stamps.offset_s + hh * HOUR + mm * MINUTE + jitter
            if start_s <= t < end_s:
                passes.append(Pass(satellite, instrument, device, t, hh < 6 or hh >= 19))
    return sorted(passes, key=lambda p: (p.t, p.device))


def plan_fires(
    world: World, passes: list[Pass], n: int, start_s: int, end_s: int, rng: np.random.Generator
) -> list[Fire]:
    fires: list[Fire] = []
    used: set[int] = set()
    xy = world.sensors.xy
    tree = shapely.STRtree(shapely.points(xy)) if len(xy) else None
    near_cell = _NearCell.of(world.grid)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        t0, t1 = _fire_times(kind, passes, used, start_s, end_s, rng)
        tries: _Tries = (
            _NearSensor(xy, (0.2, 0.6 if kind == "full" else 0.5))
            if kind in ("full", "quiet") and tree is not None
            else near_cell
        )
        x, y, cell, sensor = _fire_place(kind, world, fires, tree, tries, rng)
        fires.append(Fire(f"F{i + 1}", kind, x, y, t0, t1, cell, sensor))
    return fires


def _fire_times(
    kind: str,
    passes: list[Pass],
    used: set[int],
    start_s: int,
    end_s: int,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Ignition and put-out times; fires a satellite sees burn across a pass in the window."""
    if kind in SATELLITE_SEEN:
        usable = [
            i
            for i, p in enumerate(passes)
            if i not in used and start_s + 45 * MINUTE <= p.t <= end_s - 15 * MINUTE
        ]
        night = [i for i in usable if passes[i].night]
        pool = night if kind == "remote" and night else usable
        if pool:
            t = passes[int(rng.choice(pool))].t
            used.update(j for j, p in enumerate(passes) if abs(p.t - t) < HOUR)
            t0 = max(start_s + 10 * MINUTE, t - int(rng.uniform(30, 150) * MINUTE))
            t1 = max(t + int(rng.uniform(30, 120) * MINUTE), t0 + int(rng.uniform(1, 6) * HOUR))
            return t0, min(t1, t0 + 6 * HOUR)
    hours = {"quiet": (1.0, 1.5), "cameras": (1.0, 3.0)}.get(kind, (1.0, 6.0))
    duration = int(rng.uniform(*hours) * HOUR)
    lo = start_s + 15 * MINUTE
    hi = end_s - min(duration, HOUR)
    t0 = int(rng.uniform(lo, hi)) if hi > lo else start_s + (end_s - start_s) // 10
    return t0, t0 + duration


def _fire_place(
    kind: str,
    world: World,
    fires: list[Fire],
    tree: shapely.STRtree | None,
    tries: _Tries,
    rng: np.random.Generator,
) -> tuple[float, float, int, int]:
    """A place for a fire of `kind`, drawn by `tries`: (x, y, cell, the sensor beside it or -1).

    The first PLACE_TRIES tries ask for everything (spacing, a camera in range, 2 km inside the
    grid, the kind's sensor layout), the next PLACE_TRIES only 4 km between fires, the last any
    cell. The tries are those of a loop drawing one try at a time, so that a seed gives the same
    places whatever the speed-up; they are made and tested in growing chunks, as arrays
    (draws.py), and one try of each chunk is drawn for real to check the arrays and to leave the
    generator where the loop would (if it differs, the tries are drawn one by one).
    """
    tried, chunk, at_once = 0, 64, True
    while tried < 3 * PLACE_TRIES:
        n = min(chunk, 3 * PLACE_TRIES - tried)
        before = rng.bit_generator.state
        drawn = draws.rounds(rng, n, tries.bound) if at_once else None
        x, y, sensor = tries.at_once(drawn) if drawn else tries.one_by_one(n, rng)
        relax = np.arange(tried, tried + n) // PLACE_TRIES
        fit, cell = _first_fitting(kind, world, fires, tree, (x, y, sensor), relax)
        last = fit if fit >= 0 else n - 1  # the try the loop would stop after
        if drawn:  # draw it for real: the generator is then where the loop would leave it
            draws.seek(rng, drawn, last)
            real_x, real_y, real_sensor = tries.one_by_one(1, rng)
            if (real_x[0], real_y[0], real_sensor[0]) != (x[last], y[last], sensor[last]):
                rng.bit_generator.state, at_once = before, False  # not this numpy: one by one
                continue
        elif last < n - 1:
            rng.bit_generator.state = before
            tries.one_by_one(last + 1, rng)
        if fit >= 0:
            return float(x[fit]), float(y[fit]), cell, int(sensor[fit])
        tried += n
        chunk *= 4
    raise FirewatchError("simulate: found no place for a fire inside the grid")


Places = tuple[FloatArray, FloatArray, IntArray]  # x, y (km) and the sensor beside, or -1


class _Tries(Protocol):
    """Where a fire's tries are drawn: one by one, or the same from draws.rounds."""

    @property
    def bound(self) -> int:
        """The try's integer draw is rng.integers(bound)."""
        ...

    def one_by_one(self, n: int, rng: np.random.Generator) -> Places: ...

    def at_once(self, drawn: draws.Rounds) -> Places: ...


@dataclass(frozen=True)
class _NearSensor:
    """0.2 km to `reach` from a random sensor, in a random direction."""

    xy: FloatArray
    reach: tuple[float, float]

    @property
    def bound(self) -> int:
        return len(self.xy)

    def one_by_one(self, n: int, rng: np.random.Generator) -> Places:
        x, y, sensor = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        for i in range(n):
            sensor[i] = s = int(rng.integers(len(self.xy)))
            x[i], y[i] = _around(self.xy[s], self.reach, rng)
        return x, y, sensor

    def at_once(self, drawn: draws.Rounds) -> Places:
        lo, hi = self.reach
        angle, dist = 2 * np.pi * drawn.u1, lo + (hi - lo) * drawn.u2  # as rng.uniform does
        center = self.xy[drawn.ints]
        return center[:, 0] + dist * np.cos(angle), center[:, 1] + dist * np.sin(angle), drawn.ints


@dataclass(frozen=True)
class _NearCell:
    """Within 0.4 km (each way) of a random high-risk cell's centre (any cell if none is high)."""

    centers: FloatArray
    pool: IntArray

    @classmethod
    def of(cls, grid: SimGrid) -> _NearCell:
        high = np.flatnonzero([r == "high" for r in grid.risks])
        return cls(grid.centers, high if high.size else np.arange(len(grid.ids)))

    @property
    def bound(self) -> int:
        return len(self.pool)

    def one_by_one(self, n: int, rng: np.random.Generator) -> Places:
        x, y = np.empty(n), np.empty(n)
        for i in range(n):
            x[i], y[i] = self.centers[int(rng.choice(self.pool))] + rng.uniform(-0.4, 0.4, 2)
        return x, y, np.full(n, -1, dtype=np.int64)

    def at_once(self, drawn: draws.Rounds) -> Places:
        center = self.centers[self.pool[drawn.ints]]  # rng.choice(pool) is pool[integers(len)]
        x = center[:, 0] + (-0.4 + (0.4 - -0.4) * drawn.u1)
        y = center[:, 1] + (-0.4 + (0.4 - -0.4) * drawn.u2)
        return x, y, np.full(len(drawn), -1, dtype=np.int64)


def _first_fitting(
    kind: str,
    world: World,
    fires: list[Fire],
    tree: shapely.STRtree | None,
    places: Places,
    relax: IntArray,
) -> tuple[int, int]:
    """The first place that meets the rules of its relax level, and its cell; (-1, -1): none.

    Relax 0: all rules; 1: 4 km from other fires; 2: in a cell. The distance rules are tested
    on all places at once, the cells and shapely's tests only on the places that passed them, a
    few at a time and in order, until one fits.
    """
    x, y, sensor = places
    ok = np.ones(len(x), dtype=bool)
    if fires:
        fx, fy = np.array([[f.x, f.y] for f in fires]).T
        spacing = np.where(relax == 0, 8.0, 4.0)
        ok = (relax == 2) | (_nearest(x, y, fx, fy, spacing) >= spacing)
    todo = np.flatnonzero(ok & (relax == 0))
    if todo.size:
        ok[todo] = _in_view(world, x[todo], y[todo])
    candidates = np.flatnonzero(ok)
    start, batch = 0, 16
    while start < len(candidates):
        some = candidates[start : start + batch]
        cell = world.grid.locate_all(x[some], y[some])
        fits = cell >= 0
        strict = np.flatnonzero(fits & (relax[some] == 0))
        if strict.size:
            i = some[strict]
            fits[strict] = _strict(kind, world, tree, x[i], y[i], sensor[i])
        if fits.any():
            k = int(fits.argmax())
            return int(some[k]), int(cell[k])
        start += batch
        batch *= 4
    return -1, -1


def _in_view(world: World, x: FloatArray, y: FloatArray) -> BoolArray:
    """Rules of relax level 0: a camera within 7 km, the static site 6 km away or more."""
    ok = np.ones(len(x), dtype=bool)
    cams = world.cameras.xy
    if len(cams):
        ok &= _nearest(x, y, cams[:, 0], cams[:, 1], CAMERA_RANGE_KM - 1) <= CAMERA_RANGE_KM - 1
    sx, sy = world.static_xy
    ok &= np.hypot(x - sx, y - sy) >= 6.0
    return ok


def _strict(
    kind: str,
    world: World,
    tree: shapely.STRtree | None,
    x: FloatArray,
    y: FloatArray,
    sensor: IntArray,
) -> BoolArray:
    """Rules of relax level 0 that ask shapely: the kind's sensors within 2 km, 2 km inside."""
    ok = np.ones(len(x), dtype=bool)
    if kind in ("quiet", "remote"):  # sensors within 2 km: none, or exactly the fire's own
        none = np.zeros((2, 0), dtype=np.int64)
        point, near = none if tree is None else tree.query(shapely.points(x, y), "dwithin", 2.0)
        count = np.bincount(point, minlength=len(x))
        own = np.bincount(point, weights=near == sensor[point], minlength=len(x))
        ok = count == 0 if kind == "remote" else (count == 1) & (own == 1)
    return ok & world.grid.well_inside_all(x, y)


def _nearest(
    x: FloatArray, y: FloatArray, px: FloatArray, py: FloatArray, edge: float | FloatArray
) -> FloatArray:
    """The distance (km) from each point (x, y) to the nearest of the points (px, py).

    np.hypot where it is within a hair of `edge` (the rule's limit), elsewhere the square root
    of dx² + dy², about five times faster and only a few ulps off np.hypot: on the same side
    of `edge`, so rules compare alike."""
    dx = x[None, :] - px[:, None]  # (other points, points): the minimum runs along rows
    dy = y[None, :] - py[:, None]
    nearest: FloatArray = np.sqrt((dx * dx + dy * dy).min(axis=0))
    close = np.abs(nearest - edge) <= 1e-9 * np.asarray(edge)
    if close.any():
        nearest[close] = np.hypot(dx[:, close], dy[:, close]).min(axis=0)
    return nearest


def _around(
    center: FloatArray, reach: tuple[float, float], rng: np.random.Generator
) -> tuple[float, float]:
    angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(*reach)
    return float(center[0] + dist * np.cos(angle)), float(center[1] + dist * np.sin(angle))


def plan_noise(
    world: World,
    bulk: SensorBulk,
    fires: list[Fire],
    passes: list[Pass],
    camera_times: dict[int, list[int]],
    counts: dict[str, int],
    start_s: int,
    end_s: int,
    rng: np.random.Generator,
) -> list[Noise]:
    """Isolated false signals: sensor spikes, weak or suspect camera hits, weak satellite pixels."""
    busy = Busy()
    for f in fires:
        busy.add(f.x, f.y, f.t0 - HOUR, np.inf, 6.0)  # its incident stays open
    busy.add(*world.static_xy, -np.inf, np.inf, 5.0)
    noise: list[Noise] = []
    for kind in ("sensor_spike", "camera_weak", "camera_suspect", "satellite_low"):
        for _ in range(counts.get(kind, 0)):
            for _attempt in range(500):
                event = _candidate(kind, world, bulk, passes, start_s, end_s, rng)
                if event is None or not busy.free(event.x, event.y, event.t):
                    continue
                if kind.startswith("camera"):
                    times = camera_times.setdefault(event.device, [])
                    if any(abs(event.t - t) < HOUR for t in times):
                        continue
                    times.append(event.t)
                busy.add(event.x, event.y, event.t - HOUR, event.t + HOUR, 5.0)
                noise.append(event)
                break
    return noise


def _candidate(
    kind: str,
    world: World,
    bulk: SensorBulk,
    passes: list[Pass],
    start_s: int,
    end_s: int,
    rng: np.random.Generator,
) -> Noise | None:
    if kind == "sensor_spike":
        if bulk.size == 0:
            return None
        s, k = int(rng.integers(bulk.t.shape[0])), int(rng.integers(bulk.steps))
        x, y = world.sensors.xy[s]
        return None if bulk.special[s, k] else Noise(kind, int(bulk.t[s, k]), x, y, s, k)
    if kind == "satellite_low":
        if not passes:
            return None
        p = int(rng.integers(len(passes)))
        cell = int(rng.integers(len(world.grid.ids)))
        x, y = world.grid.centers[cell] + rng.uniform(-0.3, 0.3, size=2)
        return Noise(kind, passes[p].t, x, y, p) if world.grid.well_inside(x, y) else None
    if len(world.cameras.xy) == 0:
        return None
    c = int(rng.integers(len(world.cameras.xy)))
    x, y = _around(world.cameras.xy[c], (1.0, CAMERA_RANGE_KM - 1), rng)
    t = int(rng.integers(start_s, end_s))
    return Noise(kind, t, x, y, c) if world.grid.well_inside(x, y) else None
