"""Where and when things happen: satellite passes, fires and background noise.

Fires come in kinds, cycled in this order:

- `full`: near a sensor, seen by sensors, cameras and a satellite pass (its start is set 0.5-2.5 h
  before a pass in the window);
- `quiet`: a small smouldering fire beside one isolated sensor, seen only by that sensor's repeated
  readings and one camera suspect (tests corroboration);
- `cameras`: caught early by cameras (and any sensor close by), put out before a satellite sees it;
- `remote`: far from any sensor, seen by cameras and a satellite pass (a night pass if possible).

Fires keep 8 km apart, 6 km from the static heat source and 2 km inside the grid (relaxed only if
the grid is too small for that; placement.py finds their places). Noise events keep 5 km and an
hour away from fires and from each other, so no noise event can corroborate another or join a
fire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from firewatch.sim.placement import Placer
from firewatch.sim.sensors import SensorBulk
from firewatch.sim.timefmt import DAY_S, Stamps
from firewatch.sim.tries import around
from firewatch.sim.world import CAMERA_RANGE_KM, FloatArray, World

KINDS = ("full", "quiet", "cameras", "full", "remote")
SATELLITE_SEEN = frozenset({"full", "remote"})
HOUR = 3600
MINUTE = 60

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
    """Places and times already taken: (x, y, t_lo, t_hi, radius_km) a row."""

    regions: FloatArray = field(default_factory=lambda: np.zeros((0, 5)))

    def add(self, x: float, y: float, t_lo: float, t_hi: float, radius: float) -> None:
        self.regions = np.vstack([self.regions, [x, y, t_lo, t_hi, radius]])

    def free(self, x: float, y: float, t: float) -> bool:
        bx, by, lo, hi, r = self.regions.T
        return not ((lo <= t) & (t <= hi) & (np.hypot(x - bx, y - by) < r)).any()


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
    placer = Placer.of(world)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        t0, t1 = _fire_times(kind, passes, used, start_s, end_s, rng)
        x, y, cell, sensor = placer.place(kind, rng)
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
    x, y = around(world.cameras.xy[c], (1.0, CAMERA_RANGE_KM - 1), rng)
    t = int(rng.integers(start_s, end_s))
    return Noise(kind, t, x, y, c) if world.grid.well_inside(x, y) else None
