"""The bulk of the stream: every sensor reports every 10 minutes.

Readings are numpy arrays of shape (sensors, steps). Normal readings follow a diurnal cycle
(temperature 8-32 C, peaking mid-afternoon; humidity 35-95 %, lowest then; CO 0-8 ppm, a little
higher in the evening) with small noise, and never reach a fire threshold. Fires and sensor glitches
overwrite single readings in place (`set_reading`), so a sensor never sends two readings at once.
Lines are formatted from the arrays in a tight loop over prepared per-sensor string pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

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
    day = 2 * np.pi * (stamps.local_hour(t) - 14.5) / 24.0
    evening = 2 * np.pi * (stamps.local_hour(t) - 19.0) / 24.0

    def per_sensor(lo: float, hi: float) -> FloatArray:
        return rng.uniform(lo, hi, size=(n, 1))

    temperature = per_sensor(17, 22) + per_sensor(4, 7) * np.cos(day)
    temperature += rng.normal(0.0, 0.4, size=t.shape)
    humidity = per_sensor(62, 72) - per_sensor(15, 22) * np.cos(day)
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
    bulk: SensorBulk, sensor: int, step: int, temperature: float, co: float, humidity: float
) -> None:
    bulk.temperature[sensor, step] = temperature
    bulk.co[sensor, step] = co
    bulk.humidity[sensor, step] = humidity
    bulk.special[sensor, step] = True


class SensorLines:
    """Formats bulk readings as JSONL lines (bytes), in the order of the detection contract."""

    def __init__(self, bulk: SensorBulk, sensors: Devices, stamps: Stamps) -> None:
        self.bulk = bulk
        self.stamps = stamps
        self.names = sensors.names
        self.lat, self.lon = sensors.lat.tolist(), sensors.lon.tolist()
        self.with_id = [f'{{"id":"{name}:' for name in sensors.names]
        self.after_id = [
            f'","source":"sensor","device_id":"{name}","observed_at":"' for name in sensors.names
        ]
        self.without_id = [
            f'{{"source":"sensor","device_id":"{n}","observed_at":"' for n in self.names
        ]
        self.position = [
            f'{stamps.suffix}","lat":{lat!r},"lon":{lon!r},"readings":{{"temperature_c":'
            for lat, lon in zip(self.lat, self.lon, strict=True)
        ]
        self.temperature = np.round(bulk.temperature.ravel(), 1)
        self.co = np.round(bulk.co.ravel(), 1)
        self.humidity = np.round(bulk.humidity.ravel(), 1)
        self.epoch = bulk.t.ravel()

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

    def lines(self, index: IntArray, has_id: BoolArray) -> list[bytes]:
        """The lines of the readings at flat `index`, with an "id" where `has_id`."""
        epoch = self.epoch[index]
        days, tods = self.stamps.split(epoch)
        sensors = (index // self.bulk.steps).tolist()
        temperature = self.temperature[index].tolist()
        co = self.co[index].tolist()
        humidity = self.humidity[index].tolist()
        with_id, after_id, without_id, position = (
            self.with_id,
            self.after_id,
            self.without_id,
            self.position,
        )
        out = []
        for i, (s, e, keep) in enumerate(
            zip(sensors, epoch.tolist(), has_id.tolist(), strict=True)
        ):
            head = f"{with_id[s]}{e}{after_id[s]}" if keep else without_id[s]
            out.append(
                f'{head}{days[i]}{tods[i]}{position[s]}{temperature[i]},"co_ppm":{co[i]},'
                f'"humidity_pct":{humidity[i]}}}}}'.encode()
            )
        return out
