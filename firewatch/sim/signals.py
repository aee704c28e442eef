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
satellite record is moved on by a second if it would).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firewatch.sim.scenario import MINUTE, SATELLITE_SEEN, Fire, Noise, Pass
from firewatch.sim.sensors import SensorBulk, set_reading
from firewatch.sim.timefmt import Stamps
from firewatch.sim.world import CAMERA_RANGE_KM, World

SENSOR_REACH_KM = 1.2
CAMERA_SEES = 0.7


@dataclass
class Recorder:
    """Collects the camera and satellite records, with unique ids, and who saw which fire.

    Positions are kept in km as the records come; `records` turns them into degrees (and
    cameras' bearings) for all records at once."""

    world: World
    stamps: Stamps
    end_s: int
    times: list[int] = field(default_factory=list)
    camera_times: dict[int, list[int]] = field(default_factory=dict)
    _records: list[dict[str, Any]] = field(default_factory=list)
    _xy: list[tuple[float, float]] = field(default_factory=list)  # of each record, km
    # (record, camera) of each camera record: its bearing is set by `records`
    _seen_from: list[tuple[int, int]] = field(default_factory=list)
    _used: set[tuple[str, int]] = field(default_factory=set)

    def records(self) -> list[dict[str, Any]]:
        """The records so far, in the order they came, with their positions in degrees."""
        if self._records and self._records[-1]["lat"] is None:
            self._place()
        return self._records

    def _place(self) -> None:
        """The records' positions in degrees, and the cameras' bearings to what they saw."""
        xy = np.array(self._xy)
        lon, lat = self.world.grid.to_deg(xy[:, 0], xy[:, 1])
        for record, lat_deg, lon_deg in zip(self._records, lat.tolist(), lon.tolist(), strict=True):
            record["lat"], record["lon"] = lat_deg, lon_deg
        if not self._seen_from:
            return
        index, cam = np.array(self._seen_from).T
        dx, dy = (xy[index] - self.world.cameras.xy[cam]).T
        bearing = np.degrees(np.arctan2(dx, dy)) % 360.0
        for i, b in zip(index.tolist(), bearing.tolist(), strict=True):
            self._records[i]["bearing_deg"] = round(b, 1)

    def _claim(self, device: str, t: int) -> int:
        while (device, t) in self._used:
            t += 1
        self._used.add((device, t))
        return t

    def _head(self, source: str, device: str, t: int, x: float, y: float) -> dict[str, Any]:
        """A new record; its "lat" and "lon" are set by `records`."""
        self._xy.append((x, y))
        self.times.append(t)
        record = {
            "id": f"{device}:{t}",
            "source": source,
            "device_id": device,
            "observed_at": self.stamps.iso(t),
            "lat": None,
            "lon": None,
        }
        self._records.append(record)
        return record

    def camera(self, cam: int, t: int, x: float, y: float, conf: float, label: str) -> bool:
        if t >= self.end_s:
            return False
        cameras = self.world.cameras
        t = self._claim(cameras.names[cam], t)
        self._seen_from.append((len(self._records), cam))
        record = self._head("camera", cameras.names[cam], t, x, y)
        record["confidence"] = round(conf, 2)
        record["label"] = label
        record["bearing_deg"] = None  # set by `records`
        record["camera_lat"] = float(cameras.lat[cam])
        record["camera_lon"] = float(cameras.lon[cam])
        self.camera_times.setdefault(cam, []).append(t)
        return True

    def satellite(self, p: Pass, x: float, y: float, conf: float, frp: float, **pixel: Any) -> None:
        t = self._claim(p.device, p.t)
        record = self._head("satellite", p.device, t, x, y)
        record["confidence"] = round(conf, 2)
        record["frp_mw"] = round(frp, 1)
        record["scan_km"] = round(pixel["scan"], 2)
        record["track_km"] = round(pixel["track"], 2)
        record["instrument"] = p.instrument
        record["satellite"] = p.satellite
        record["static"] = bool(pixel.get("static", False))


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
    d = np.hypot(world.sensors.xy[:, 0] - fire.x, world.sensors.xy[:, 1] - fire.y)
    for s in np.flatnonzero(d <= SENSOR_REACH_KM):
        hit = False
        for k in np.flatnonzero((bulk.t[s] >= fire.t0) & (bulk.t[s] < fire.t1)):
            p = fire.progress(float(bulk.t[s, k]))
            if d[s] > 0.4 + 0.8 * p:
                continue
            near = float(np.exp(-d[s]))
            co = 55 + (60 + 350 * p) * near * rng.uniform(0.8, 1.2)
            temp = bulk.temperature[s, k] + (25 + 80 * p) * near * rng.uniform(0.8, 1.2)
            humidity = max(8.0, bulk.humidity[s, k] * (0.35 + 0.35 * d[s]))
            set_reading(bulk, int(s), int(k), temp, co, humidity)
            seen.records["sensor"] += 1
            hit = True
        if hit:
            seen.sensors.append(world.sensors.names[s])


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
        if rec.camera(cam, t, x, y, rng.uniform(0.55, 0.72), "smoke"):
            seen.cameras.append(rec.world.cameras.names[cam])
            seen.records["camera"] += 1


def _watch(fire: Fire, rec: Recorder, rng: np.random.Generator, seen: Seen) -> None:
    cams = rec.world.cameras.xy
    if len(cams) == 0:
        return
    d = np.hypot(cams[:, 0] - fire.x, cams[:, 1] - fire.y)
    nearest = d.argmin()
    for cam in np.flatnonzero(d <= CAMERA_RANGE_KM):
        if cam != nearest and rng.random() >= CAMERA_SEES:
            continue
        first = fire.t0 + int(rng.uniform(4, 15) * MINUTE + 40 * d[cam])
        t, reported = first, 0
        while t < fire.t1:
            q = (t - first) / max(fire.t1 - first, 1)
            conf = _clip(0.55 + 0.40 * q + rng.normal(0, 0.015), 0.5, 0.97)
            x, y = _estimate(fire, q, rng)
            if rec.camera(int(cam), t, x, y, conf, "flame" if conf >= 0.8 else "smoke"):
                reported += 1
            t += int(rng.uniform(3, 7) * MINUTE)
        if reported:
            seen.cameras.append(rec.world.cameras.names[cam])
            seen.records["camera"] += reported


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
