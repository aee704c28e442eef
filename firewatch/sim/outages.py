"""Devices that go silent, and the cameras' heartbeats that show the others are alive.

- Every tower sends a clear-view status every HEARTBEAT_S (30 min, from a phase of its own): a
  camera record of smoke confidence 0.01-0.05 at its own position, with camera_lat/camera_lon
  and no bearing, which the engine ignores as a fire signal and counts as a sign of life.
- Each stream has SENSOR_OUTAGES sensors and CAMERA_OUTAGES towers silent for 2-6 hours, and one
  power cut: every sensor and tower within POWER_CUT_KM of a point is silent for 3-5 hours (the
  cells near its middle are then watched by no device). A device is only silenced over a span in
  which it reports nothing special (no fire or noise reading, no camera report), so that the
  fires and noise of the stream are seen as planned; a stream too short for an outage has none.

Silenced sensor readings are dropped by the transport (transport.deliver `silent`); silenced towers
send no heartbeat. Their draws come from a generator of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firewatch.sim.records import Recorder
from firewatch.sim.sensors import BoolArray, SensorBulk
from firewatch.sim.world import World

HEARTBEAT_S = 1800
SENSOR_OUTAGES = 2
CAMERA_OUTAGES = 1
POWER_CUT_KM = 12.0
HOUR = 3600


@dataclass(frozen=True)
class Silence:
    device: str
    source: str  # sensor | camera
    start: int  # epoch s: its first report missing
    end: int  # epoch s: its first report back (the span is [start, end))
    cause: str  # fault | power_cut


def plan_outages(
    world: World,
    bulk: SensorBulk,
    camera_times: dict[int, list[int]],
    window: tuple[int, int],
    rng: np.random.Generator,
) -> list[Silence]:
    """The stream's silences: a few single devices, and one power cut."""
    start_s, end_s = window
    out: list[Silence] = []
    taken: set[str] = set()

    def span(lo_h: float, hi_h: float) -> tuple[int, int] | None:
        length = int(rng.uniform(lo_h, hi_h) * HOUR)
        first, last = start_s + HOUR, end_s - length - HOUR
        if last <= first:
            return None
        begin = int(rng.integers(first, last))
        return begin, begin + length

    def quiet_sensors(begin: int, end: int) -> BoolArray:
        inside = (bulk.t >= begin) & (bulk.t < end)
        quiet: BoolArray = ~np.any(bulk.special & inside, axis=1)
        return quiet

    def quiet_camera(cam: int, begin: int, end: int) -> bool:
        return not any(begin <= t < end + HEARTBEAT_S for t in camera_times.get(cam, []))

    names_s, names_c = world.sensors.names, world.cameras.names
    for _ in range(SENSOR_OUTAGES):
        when = span(2, 6)
        if when is None or not names_s:
            break
        free = [i for i in np.flatnonzero(quiet_sensors(*when)).tolist() if names_s[i] not in taken]
        if free:
            i = free[int(rng.integers(len(free)))]
            taken.add(names_s[i])
            out.append(Silence(names_s[i], "sensor", *when, "fault"))
    for _ in range(CAMERA_OUTAGES):
        when = span(2, 6)
        if when is None or not names_c:
            break
        free = [c for c in range(len(names_c)) if quiet_camera(c, *when)]
        if free:
            c = free[int(rng.integers(len(free)))]
            taken.add(names_c[c])
            out.append(Silence(names_c[c], "camera", *when, "fault"))
    when = span(3, 5)
    if when is not None and names_s:
        centre = world.sensors.xy[int(rng.integers(len(names_s)))]
        near_s = np.hypot(*(world.sensors.xy - centre).T) <= POWER_CUT_KM
        near_c = np.hypot(*(world.cameras.xy - centre).T) <= POWER_CUT_KM
        quiet = quiet_sensors(*when)
        for i in np.flatnonzero(near_s & quiet).tolist():
            if names_s[i] not in taken:
                out.append(Silence(names_s[i], "sensor", *when, "power_cut"))
        for c in np.flatnonzero(near_c).tolist():
            if names_c[c] not in taken and quiet_camera(c, *when):
                out.append(Silence(names_c[c], "camera", *when, "power_cut"))
    return out


def silenced_readings(bulk: SensorBulk, world: World, silences: list[Silence]) -> BoolArray:
    """The bulk readings (flat, as the transport numbers them) that a silence drops."""
    silent = np.zeros(bulk.t.shape, dtype=bool)
    row = {name: i for i, name in enumerate(world.sensors.names)}
    for s in silences:
        if s.source == "sensor":
            i = row[s.device]
            silent[i] = (bulk.t[i] >= s.start) & (bulk.t[i] < s.end)
    return silent.ravel()


def heartbeats(
    rec: Recorder, silences: list[Silence], window: tuple[int, int], rng: np.random.Generator
) -> int:
    """Every tower's clear-view status every HEARTBEAT_S, except while it is silent; how many."""
    start_s, end_s = window
    cameras = rec.world.cameras
    off: dict[str, list[tuple[int, int]]] = {}
    for s in silences:
        if s.source == "camera":
            off.setdefault(s.device, []).append((s.start, s.end))
    phase = rng.integers(0, HEARTBEAT_S, size=len(cameras.names))
    sent = 0
    for cam, name in enumerate(cameras.names):
        times = list(range(start_s + int(phase[cam]), end_s, HEARTBEAT_S))
        times = [t for t in times if not any(a <= t < b for a, b in off.get(name, []))]
        if not times:
            continue
        conf = rng.uniform(0.01, 0.05, size=len(times))
        x, y = cameras.xy[cam]
        n = len(times)
        sent += rec.cameras(cam, times, [x] * n, [y] * n, conf, ["smoke"] * n, status=True)
    return sent
