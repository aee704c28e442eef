"""A batch after locate and the per-record rules: what the engine's later steps need, and no more.

`Engine.prepare` makes one from validated detections (columns, each record's grid cell, its fire
signal strength before masks, the satellite `static` flag) with a `Signal` for each located
record that is a fire signal; `Engine.process_located` takes it from there (masks, the grace
buffer, incidents). A replay does both in one call (`Engine.process`); a stream worker does the
first in its locate stage and sends the result on, split by region (stream/wire.py), so that its
incidents stage parses no JSON and does no geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from firewatch.engine.signals import Columns, Signal

T = TypeVar("T")


@dataclass
class Located:
    cols: Columns
    cell: np.ndarray  # int64: grid cell index, -1 outside every cell
    strength: np.ndarray  # int8: 0, Strength.SUSPECT or STRONG, before masks
    static: np.ndarray  # bool: a satellite pixel flagged static (FIRMS type 2)
    signals: dict[int, Signal]  # by row: the located records whose strength is not 0
    grid: str  # the cells key (engine/state.py) of the grid whose cell indexes these are
    # each record's device_id (object array of str), and where the cameras that say so stand
    # (row -> camera_lat, camera_lon): what device health (engine/health.py) needs
    device: np.ndarray
    stations: dict[int, tuple[float, float]]

    def __len__(self) -> int:
        return len(self.cell)

    def take(self, rows: np.ndarray) -> Located:
        """The rows given (sorted ascending), in their order."""
        c = self.cols
        return Located(
            Columns(t=c.t[rows], lat=c.lat[rows], lon=c.lon[rows], source=c.source[rows]),
            self.cell[rows],
            self.strength[rows],
            self.static[rows],
            _taken(self.signals, rows),
            self.grid,
            self.device[rows],
            _taken(self.stations, rows),
        )

    @classmethod
    def concat(cls, parts: Sequence[Located]) -> Located:
        """Parts one after the other, as one batch (located on the same grid)."""
        if len(parts) == 1:
            return parts[0]
        if len({p.grid for p in parts}) > 1:
            raise ValueError("parts located on different grids cannot be one batch")
        signals: dict[int, Signal] = {}
        stations: dict[int, tuple[float, float]] = {}
        base = 0
        for p in parts:
            signals.update({base + i: s for i, s in p.signals.items()})
            stations.update({base + i: at for i, at in p.stations.items()})
            base += len(p)
        return cls(
            Columns(
                t=np.concatenate([p.cols.t for p in parts]),
                lat=np.concatenate([p.cols.lat for p in parts]),
                lon=np.concatenate([p.cols.lon for p in parts]),
                source=np.concatenate([p.cols.source for p in parts]),
            ),
            np.concatenate([p.cell for p in parts]),
            np.concatenate([p.strength for p in parts]),
            np.concatenate([p.static for p in parts]),
            signals,
            parts[0].grid,
            np.concatenate([p.device for p in parts]),
            stations,
        )


def _taken(by_row: dict[int, T], rows: np.ndarray) -> dict[int, T]:
    """`by_row` for the rows taken (sorted ascending), keyed by their position among them."""
    if not by_row or not len(rows):
        return {}
    wanted = np.fromiter(by_row, np.int64, len(by_row))
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    hit = rows[at] == wanted
    return {i: by_row[r] for r, i in zip(wanted[hit].tolist(), at[hit].tolist(), strict=True)}
