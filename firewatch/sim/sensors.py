"""The bulk of the stream: every sensor reports every 10 minutes.

Readings are numpy arrays of shape (sensors, steps). Normal readings follow a diurnal cycle
(temperature 8-32 C, peaking mid-afternoon; humidity 35-95 %, lowest then; CO 0-8 ppm, a little
higher in the evening) with small noise, and never reach a fire threshold. Fires and sensor glitches
overwrite single readings in place (`set_reading`), so a sensor never sends two readings at once.
Lines are formatted from the arrays many at a time, from tables of byte pieces (columns.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from firewatch.sim.columns import Column, decimals, integers
from firewatch.sim.timefmt import Stamps
from firewatch.sim.world import Devices

STEP_S = 600
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass
class SensorBulk:
    """Readings of all sensors at all steps; flat index = sensor * steps + step."""

    t: IntArray  # (sensors, steps) epoch seconds of each reading
    temperature: FloatArray
    co: FloatArray
    humidity: FloatArray
    special: BoolArray  # overwritten by a fire or a glitch

    @property
    def steps(self) -> int:
        return int(self.t.shape[1])

    @property
    def size(self) -> int:
        return int(self.t.size)


def normal_readings(
    phase: IntArray, start_s: int, steps: int, stamps: Stamps, rng: np.random.Generator
) -> SensorBulk:
    """Normal readings of sensors with the given reporting phases (seconds after each 10 min)."""
    n = len(phase)
    t = start_s + phase[:, None] + STEP_S * np.arange(steps, dtype=np.int64)[None, :]
    hour = stamps.local_hour(t)
    day = np.cos(2 * np.pi * (hour - 14.5) / 24.0)
    evening = 2 * np.pi * (hour - 19.0) / 24.0

    def per_sensor(lo: float, hi: float) -> FloatArray:
        return rng.uniform(lo, hi, size=(n, 1))

    temperature = per_sensor(17, 22) + per_sensor(4, 7) * day
    temperature += rng.normal(0.0, 0.4, size=t.shape)
    humidity = per_sensor(62, 72) - per_sensor(15, 22) * day
    humidity += rng.normal(0.0, 2.0, size=t.shape)
    co = per_sensor(0.5, 3.0) + 0.8 * (1 + np.cos(evening)) + rng.normal(0.0, 0.3, size=t.shape)
    return SensorBulk(
        t=t,
        temperature=np.clip(temperature, 8.0, 32.0),
        co=np.clip(co, 0.0, 8.0),
        humidity=np.clip(humidity, 35.0, 95.0),
        special=np.zeros(t.shape, dtype=bool),
    )


def set_reading(
    bulk: SensorBulk,
    sensor: int | IntArray,
    step: int | IntArray,
    temperature: float | FloatArray,
    co: float | FloatArray,
    humidity: float | FloatArray,
) -> None:
    """Overwrite one reading, or many (arrays of sensors and steps, and their values)."""
    bulk.temperature[sensor, step] = temperature
    bulk.co[sensor, step] = co
    bulk.humidity[sensor, step] = humidity
    bulk.special[sensor, step] = True


class SensorLines:
    """Formats bulk readings as JSONL lines (bytes), in the order of the detection contract.

    A line is the pieces of `columns`: per sensor (the head with or without an id, its position),
    per reading (the epoch second of the id, the timestamp, the three readings)."""

    def __init__(self, bulk: SensorBulk, sensors: Devices, stamps: Stamps) -> None:
        self.bulk = bulk
        self.stamps = stamps
        self.names = sensors.names
        self.lat, self.lon = sensors.lat.tolist(), sensors.lon.tolist()
        self.temperature = np.round(bulk.temperature.ravel(), 1)
        self.co = np.round(bulk.co.ravel(), 1)
        self.humidity = np.round(bulk.humidity.ravel(), 1)
        self.epoch = bulk.t.ravel()
        self._heads = [  # sensor s: 2 * s without an id, 2 * s + 1 with one
            head
            for name in self.names
            for head in (
                f'{{"source":"sensor","device_id":"{name}","observed_at":"',
                f'{{"id":"{name}:',
            )
        ]
        self._after_id = [
            f'","source":"sensor","device_id":"{name}","observed_at":"' for name in self.names
        ]
        self._position = [
            f'","lat":{lat!r},"lon":{lon!r},"readings":{{"temperature_c":'
            for lat, lon in zip(self.lat, self.lon, strict=True)
        ]
        self._readings = [  # over all readings: their tables span all values
            decimals(self.temperature, 1, ',"co_ppm":'),
            decimals(self.co, 1, ',"humidity_pct":'),
            decimals(self.humidity, 1, "}}\n"),
        ]

    def device(self, index: int) -> str:
        return self.names[index // self.bulk.steps]

    def record(self, index: int) -> dict[str, object]:
        """One reading as a dict (for tests and for malformed-line templates)."""
        sensor = index // self.bulk.steps
        return {
            "id": f"{self.names[sensor]}:{int(self.epoch[index])}",
            "source": "sensor",
            "device_id": self.names[sensor],
            "observed_at": self.stamps.iso(int(self.epoch[index])),
            "lat": self.lat[sensor],
            "lon": self.lon[sensor],
            "readings": {
                "temperature_c": float(self.temperature[index]),
                "co_ppm": float(self.co[index]),
                "humidity_pct": float(self.humidity[index]),
            },
        }

    def columns(self, reading: IntArray, has_id: BoolArray) -> list[Column]:
        """The pieces of the lines (each ending in a newline) of the readings at flat index
        `reading`, with an "id" where `has_id`; nothing on rows where `reading` is -1."""
        if self.bulk.size == 0:
            return []
        is_reading = reading >= 0
        at = np.where(is_reading, reading, 0)
        sensor = at // self.bulk.steps
        with_id = is_reading & has_id
        epoch = self.epoch[at]
        return [
            Column(self._heads, np.where(is_reading, 2 * sensor + with_id, -1)),
            *(c.only(with_id) for c in integers(epoch)),
            Column(self._after_id, np.where(with_id, sensor, -1)),
            *(c.only(is_reading) for c in self.stamps.columns(epoch)),
            Column(self._position, np.where(is_reading, sensor, -1)),
            *(c.take(at).only(is_reading) for c in self._readings),
        ]
