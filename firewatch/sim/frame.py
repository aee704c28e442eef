"""An equirectangular metric frame: km about a point, good to a few metres over a county."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_AT_EQUATOR = 111.320

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Km = TypeVar("Km", float, FloatArray)  # one point's coordinate, or many


@dataclass(frozen=True)
class Frame:
    """An equirectangular metric frame (km) about (lon0, lat0)."""

    lon0: float
    lat0: float

    @property
    def kx(self) -> float:
        return KM_PER_DEG_LON_AT_EQUATOR * math.cos(math.radians(self.lat0))

    @property
    def ky(self) -> float:
        return KM_PER_DEG_LAT

    def to_km(self, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def to_deg(self, x: Km, y: Km) -> tuple[Km, Km]:
        return self.lon0 + x / self.kx, self.lat0 + y / self.ky
