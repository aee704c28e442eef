"""A fire's tries: an anchor (a sensor, or a high-risk cell's centre) and a point near it.

Each try is drawn as one `rng.integers(bound)` (the anchor) and two `rng.uniform(...)` calls
(the point), one try after another (`one_by_one`), or the same tries worked out from the
generator's words many at a time (`at`, from draws.rounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from firewatch.sim import draws
from firewatch.sim.world import FloatArray, IntArray

Places = tuple[FloatArray, FloatArray, IntArray]  # x, y (km) and the sensor beside, or -1
Place = tuple[float, float, int]  # one of them


class Tries(Protocol):
    """Where a fire's tries are drawn: one by one, or the same from draws.rounds."""

    @property
    def bound(self) -> int:
        """The try's integer draw is rng.integers(bound), the index of its anchor."""
        ...

    @property
    def anchors(self) -> FloatArray:
        """(bound, 2) km: each try is within `radius` of the anchor its integer picks."""
        ...

    @property
    def radius(self) -> float: ...

    @property
    def on_sensors(self) -> bool:
        """The anchors are the sensors (a `quiet` fire's own sensor is its anchor)."""
        ...

    def one_by_one(self, n: int, rng: np.random.Generator) -> Places: ...

    def at(self, drawn: draws.Rounds, rows: IntArray) -> Places:
        """The tries `rows` of `drawn`, as the loop would make them."""
        ...

    def one(self, drawn: draws.Rounds, row: int) -> Place:
        """`at` of one row, in Python numbers (the same numbers)."""
        ...


@dataclass(frozen=True)
class NearSensor:
    """0.2 km to `reach` from a random sensor, in a random direction."""

    xy: FloatArray
    reach: tuple[float, float]

    @property
    def bound(self) -> int:
        return len(self.xy)

    @property
    def anchors(self) -> FloatArray:
        return self.xy

    @property
    def radius(self) -> float:
        return self.reach[1]

    @property
    def on_sensors(self) -> bool:
        return True

    def one_by_one(self, n: int, rng: np.random.Generator) -> Places:
        x, y, sensor = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        for i in range(n):
            sensor[i] = s = int(rng.integers(len(self.xy)))
            x[i], y[i] = around(self.xy[s], self.reach, rng)
        return x, y, sensor

    def at(self, drawn: draws.Rounds, rows: IntArray) -> Places:
        lo, hi = self.reach
        u1, u2 = drawn.uniforms(rows)
        angle, dist = 2 * np.pi * u1, lo + (hi - lo) * u2  # as rng.uniform does
        sensor = drawn.ints[rows]
        center = self.xy[sensor]
        return center[:, 0] + dist * np.cos(angle), center[:, 1] + dist * np.sin(angle), sensor

    def one(self, drawn: draws.Rounds, row: int) -> Place:
        lo, hi = self.reach
        u1, u2 = drawn.uniform_pair(row)
        angle, dist = 2 * np.pi * u1, lo + (hi - lo) * u2
        sensor = int(drawn.ints[row])
        cx, cy = self.xy[sensor].tolist()
        return cx + dist * float(np.cos(angle)), cy + dist * float(np.sin(angle)), sensor


@dataclass(frozen=True)
class NearCell:
    """Within 0.4 km (each way) of a random high-risk cell's centre (any cell if none is high)."""

    centers: FloatArray
    pool: IntArray

    @property
    def bound(self) -> int:
        return len(self.pool)

    @property
    def anchors(self) -> FloatArray:
        return self.centers[self.pool]

    @property
    def radius(self) -> float:
        return 0.4 * math.sqrt(2)

    @property
    def on_sensors(self) -> bool:
        return False

    def one_by_one(self, n: int, rng: np.random.Generator) -> Places:
        x, y = np.empty(n), np.empty(n)
        for i in range(n):
            x[i], y[i] = self.centers[int(rng.choice(self.pool))] + rng.uniform(-0.4, 0.4, 2)
        return x, y, np.full(n, -1, dtype=np.int64)

    def at(self, drawn: draws.Rounds, rows: IntArray) -> Places:
        center = self.centers[self.pool[drawn.ints[rows]]]  # choice(pool): pool[integers(len)]
        u1, u2 = drawn.uniforms(rows)
        x = center[:, 0] + (-0.4 + (0.4 - -0.4) * u1)
        y = center[:, 1] + (-0.4 + (0.4 - -0.4) * u2)
        return x, y, np.full(len(rows), -1, dtype=np.int64)

    def one(self, drawn: draws.Rounds, row: int) -> Place:
        cx, cy = self.centers[self.pool[drawn.ints[row]]].tolist()
        u1, u2 = drawn.uniform_pair(row)
        return cx + (-0.4 + (0.4 - -0.4) * u1), cy + (-0.4 + (0.4 - -0.4) * u2), -1


def around(
    center: FloatArray, reach: tuple[float, float], rng: np.random.Generator
) -> tuple[float, float]:
    angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(*reach)
    return float(center[0] + dist * np.cos(angle)), float(center[1] + dist * np.sin(angle))
