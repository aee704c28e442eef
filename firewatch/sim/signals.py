"""What fires, noise and the static heat source look like to sensors, cameras and satellites.

- Sensors within 1.2 km of a burning fire read over threshold (CO >= 55 ppm, temperature up to
  about 120 C near the fire) once the fire's reach (0.4 km growing to 1.2 km) gets to them.
- Each camera within 8 km sees a fire with probability 0.7 (the nearest always), from 4-15 minutes
  after ignition plus 40 s per km, every 3-7 minutes until it is put out: smoke, then flame, with
  confidence rising from 0.55 to 0.95; its position estimate is off by up to 0.5 km, less as the
  fire grows.
- A satellite pass over a burning `full` or `remote` fire reports 1-4 adjacent pixels (more as it
  grows) centred on the fire: confidence 0.4-0.95, FRP 5-300 MW; every pass also sees the static
  heat source (`static: true`).

Record ids are "<device_id>:<epoch seconds>"; no device reports twice in one second (a camera or
satellite record is moved on by a second if it would: records.py).

The draws are those of loops of scalar draws (a seed keeps its stream); some are made many at a
time where numpy gives the same numbers: n scalar uniform (or normal) draws are one draw of size
n, and rng.uniform(lo, hi) and rng.normal(0, s) are lo + (hi - lo) * rng.random() and
0.0 + s * rng.standard_normal().
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from firewatch.sim.records import Recorder
from firewatch.sim.scenario import MINUTE, SATELLITE_SEEN, Fire, Noise, Pass
from firewatch.sim.sensors import SensorBulk, set_reading
from firewatch.sim.world import CAMERA_RANGE_KM, FloatArray, World

SENSOR_REACH_KM = 1.2
CAMERA_SEES = 0.7


@dataclass
class Seen:
    """What one fire produced."""

    sensors: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    records: Counter[str] = field(default_factory=Counter)


def burn(
    fire: Fire, bulk: SensorBulk, passes: list[Pass], rec: Recorder, rng: np.random.Generator
) -> Seen:
    """Every detection of one fire: sensor readings in `bulk`, the rest in `rec`."""
    seen = Seen()
    if fire.kind == "quiet":
        _smoulder(fire, bulk, rec, rng, seen)
        return seen
    if fire.kind != "remote":
        _heat_sensors(fire, bulk, rec.world, rng, seen)
    _watch(fire, rec, rng, seen)
    if fire.kind in SATELLITE_SEEN:
        for p in passes:
            if fire.t0 <= p.t < fire.t1 and fire.progress(p.t) >= 0.1:
                _pixels(fire, p, rec, rng, seen)
    return seen


def _heat_sensors(
    fire: Fire, bulk: SensorBulk, world: World, rng: np.random.Generator, seen: Seen
) -> None:
    """Sensors within the fire's reach read hot, reading after reading. All at once: the loop
    over sensors and their readings drew two rng.uniform(0.8, 1.2) a reading (CO, then
    temperature), which are the draws of one call of size 2n."""
    d = np.hypot(world.sensors.xy[:, 0] - fire.x, world.sensors.xy[:, 1] - fire.y)
    near_ones = np.flatnonzero(d <= SENSOR_REACH_KM)
    t = bulk.t[near_ones]
    row, k = np.nonzero((t >= fire.t0) & (t < fire.t1))  # sensor after sensor, in time order
    s = near_ones[row]
    span = max(fire.t1 - fire.t0, 1)
    p = np.minimum(np.maximum((t[row, k].astype(np.float64) - fire.t0) / span, 0.0), 1.0)
    reached = ~(d[s] > 0.4 + 0.8 * p)
    s, k, p = s[reached], k[reached], p[reached]
    if not s.size:
        return
    u = rng.uniform(0.8, 1.2, size=(len(s), 2))
    near = np.exp(-d[s])
    co = 55 + (60 + 350 * p) * near * u[:, 0]
    temp = bulk.temperature[s, k] + (25 + 80 * p) * near * u[:, 1]
    humidity = np.maximum(8.0, bulk.humidity[s, k] * (0.35 + 0.35 * d[s]))
    set_reading(bulk, s, k, temp, co, humidity)
    seen.records["sensor"] += len(s)
    hot = np.ones(len(s), dtype=bool)
    hot[1:] = s[1:] != s[:-1]
    seen.sensors += [world.sensors.names[i] for i in s[hot].tolist()]


def _smoulder(
    fire: Fire, bulk: SensorBulk, rec: Recorder, rng: np.random.Generator, seen: Seen
) -> None:
    """A `quiet` fire: its sensor reads over threshold repeatedly, one camera is unsure."""
    first = None
    if fire.sensor >= 0:
        s = fire.sensor
        burning = (bulk.t[s] >= fire.t0 + 5 * MINUTE) & (bulk.t[s] < fire.t1)
        for k in np.flatnonzero(burning):
            temp = min(58.0, bulk.temperature[s, k] + rng.uniform(4, 15))
            co = rng.uniform(55, 85)
            set_reading(bulk, s, int(k), temp, co, bulk.humidity[s, k] * 0.8)
            seen.records["sensor"] += 1
            first = int(bulk.t[s, k]) if first is None else first
        if first is not None:
            seen.sensors.append(rec.world.sensors.names[s])
    cams = rec.world.cameras.xy
    if len(cams) == 0:
        return
    d = np.hypot(cams[:, 0] - fire.x, cams[:, 1] - fire.y)
    cam = int(d.argmin())
    t = (first if first is not None else fire.t0 + 10 * MINUTE) + int(rng.uniform(2, 8) * MINUTE)
    if d[cam] <= CAMERA_RANGE_KM:
        x, y = _estimate(fire, 0.0, rng)
        if rec.camera(cam, t, x, y, rng.uniform(0.55, 0.72), "smoke", (fire.x, fire.y)):
            seen.cameras.append(rec.world.cameras.names[cam])
            seen.records["camera"] += 1


def _watch(fire: Fire, rec: Recorder, rng: np.random.Generator, seen: Seen) -> None:
    cams = rec.world.cameras.xy
    if len(cams) == 0:
        return
    d = np.hypot(cams[:, 0] - fire.x, cams[:, 1] - fire.y)
    nearest = d.argmin()
    watching: list[tuple[int, int, list[int], FloatArray]] = []  # camera, first, times, normals
    for in_range in np.flatnonzero(d <= CAMERA_RANGE_KM):
        if in_range != nearest and rng.random() >= CAMERA_SEES:
            continue
        first = fire.t0 + int(rng.uniform(4, 15) * MINUTE + 40 * d[in_range])
        times, z = _report_draws(first, fire.t1, rng)
        if times:
            watching.append((int(in_range), first, times, z))
    if not watching:
        return
    # every camera's reports at once: confidence and position, as the loop worked them out
    counts = [len(times) for _, _, times, _ in watching]
    t = np.concatenate([times for _, _, times, _ in watching])
    firsts = np.repeat([f for _, f, _, _ in watching], counts)
    q = (t - firsts) / np.repeat([max(fire.t1 - f, 1) for _, f, _, _ in watching], counts)
    z = np.concatenate([z for _, _, _, z in watching])
    conf = np.minimum(np.maximum(0.55 + 0.40 * q + (0.0 + 0.015 * z[:, 0]), 0.5), 0.97)
    x, y = _estimates(fire, q, z[:, 1:])
    labels = ["flame" if c >= 0.8 else "smoke" for c in conf.tolist()]
    at = 0
    for (cam, _, times, _), n in zip(watching, counts, strict=True):
        end = at + n
        aim = ([fire.x] * n, [fire.y] * n)
        reported = rec.cameras(cam, times, x[at:end], y[at:end], conf[at:end], labels[at:end], aim)
        at = end
        if reported:
            seen.cameras.append(rec.world.cameras.names[cam])
            seen.records["camera"] += reported


def _report_draws(first: int, t1: int, rng: np.random.Generator) -> tuple[list[int], FloatArray]:
    """A camera's report times from `first` until `t1`, and for each report the three standard
    normals it draws: the same draws as a loop of rng.normal(0, 0.015) (confidence),
    _estimate's rng.normal(0, s, size=2) and rng.uniform(3, 7) (minutes to the next report),
    which are loc + scale * a standard normal and lo + (hi - lo) * rng.random()."""
    normals = np.empty((max(t1 - first, 0) // (3 * MINUTE) + 1, 3))  # room for every report
    times: list[int] = []
    standard_normal, random = rng.standard_normal, rng.random
    t = first
    while t < t1:
        standard_normal(out=normals[len(times)])
        times.append(t)
        t += int((3.0 + 4.0 * random()) * MINUTE)
    return times, normals[: len(times)]


def _estimates(fire: Fire, q: FloatArray, z: FloatArray) -> tuple[list[float], list[float]]:
    """_estimate of each report, from its two standard normals."""
    spread = 0.3 - 0.2 * q
    ex, ey = 0.0 + spread * z[:, 0], 0.0 + spread * z[:, 1]
    norm = np.hypot(ex, ey)
    far = norm > 0.5
    shrink = 0.5 / norm[far]
    ex[far], ey[far] = ex[far] * shrink, ey[far] * shrink
    return (fire.x + ex).tolist(), (fire.y + ey).tolist()


def _estimate(fire: Fire, q: float, rng: np.random.Generator) -> tuple[float, float]:
    """A camera's estimate of the fire's position: off by up to 0.5 km, less as it grows."""
    ex, ey = rng.normal(0.0, 0.3 - 0.2 * q, size=2).tolist()
    norm = float(np.hypot(ex, ey))
    if norm > 0.5:
        ex, ey = ex * (0.5 / norm), ey * (0.5 / norm)
    return fire.x + ex, fire.y + ey


def _pixels(fire: Fire, p: Pass, rec: Recorder, rng: np.random.Generator, seen: Seen) -> None:
    """1-4 adjacent pixels of one pass, centred on the fire."""
    progress = fire.progress(p.t)
    n = min(4, 1 + int(progress * 3.5 + rng.uniform(0, 0.8)))
    scan, track = p.pixel_km(rng)
    offsets = np.array([(0, 0), (1, 0), (0, 1), (1, 1)][:n], dtype=float)
    offsets -= offsets.mean(axis=0) - rng.uniform(-0.25, 0.25, size=2)
    offsets *= rng.choice([-1.0, 1.0], size=2)
    scale = 0.35 if p.instrument == "VIIRS" else 1.0
    for k, (ox, oy) in enumerate(offsets.tolist()):
        conf = _clip(0.45 + 0.5 * progress - 0.08 * k + rng.normal(0, 0.04), 0.4, 0.95)
        frp = (10 + 290 * progress**1.5) * rng.uniform(0.6, 1.0) * (1 - 0.2 * k) * scale
        x, y = fire.x + ox * scan, fire.y + oy * track
        rec.satellite(p, x, y, conf, _clip(frp, 5.0, 300.0), scan=scan, track=track)
        seen.records["satellite"] += 1


def _clip(value: float, lo: float, hi: float) -> float:
    """np.clip of one float, without numpy's cost per call."""
    return min(max(value, lo), hi)


def static_source(passes: list[Pass], rec: Recorder, rng: np.random.Generator) -> int:
    """The industrial heat source, seen by every pass with `static: true`."""
    sx, sy = rec.world.static_xy
    for p in passes:
        scan, track = p.pixel_km(rng)
        x, y = sx + rng.uniform(-0.1, 0.1), sy + rng.uniform(-0.1, 0.1)
        conf, frp = rng.uniform(0.55, 0.9), rng.uniform(12, 60)
        rec.satellite(p, x, y, conf, frp, scan=scan, track=track, static=True)
    return len(passes)


def false_signal(
    event: Noise, bulk: SensorBulk, passes: list[Pass], rec: Recorder, rng: np.random.Generator
) -> None:
    """One noise event: a single sensor glitch, a camera hit, or a weak satellite pixel."""
    if event.kind == "sensor_spike":
        s, k = event.device, event.step
        if rng.random() < 0.5:  # hot: sun on the housing
            temp, co = rng.uniform(62, 75), bulk.co[s, k]
        else:  # a whiff of exhaust
            temp, co = bulk.temperature[s, k], rng.uniform(55, 80)
        set_reading(bulk, s, k, temp, co, bulk.humidity[s, k])
    elif event.kind == "satellite_low":
        p = passes[event.device]
        scan, track = p.pixel_km(rng)
        rec.satellite(
            p, event.x, event.y, rng.uniform(0.08, 0.28), rng.uniform(2, 8), scan=scan, track=track
        )
    else:
        conf = rng.uniform(0.30, 0.49) if event.kind == "camera_weak" else rng.uniform(0.52, 0.75)
        rec.camera(event.device, event.t, event.x, event.y, conf, "smoke")
