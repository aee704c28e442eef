"""Device health: a device silent for longer than it usually is, is down; a grid cell whose every
watching device is down, is blind. In event time, like the incidents: no clock is read.

Each device (by `device_id`, of a source with a rule in `devices`) is known from its first located
record: where it stands (a camera's `camera_lat`/`camera_lon` when it sends them, else its
record's position), its cell, and the cells it watches (a sensor its own; a camera those whose
centre is within `camera_watch_km`, in its own region, so that every region's engine judges its
own cells with what it sees). It is judged by its reporting interval: the mean gap between its
reports, learned from its own history (rules: `learn_after` gaps; before that the larger of that
and the source's `interval`). Silent for longer than max(min_silence, tolerance x interval) after
its last record, it is down at that moment (`device_down`); its next record brings it up
(`device_up`). Once learned, a silence that made it down does not count into its interval.

Records wait for the watermark like fire signals (the grace period), then are taken in event-time
order, so that input late by up to the grace gives the same device events as sorted input, in
batches of any size; a record later than that is no sign of life (a device whose clock is behind
is not watching in time: it goes down, and its late records change nothing). When the watermark
passes a device's deadline without a record, it is down at its deadline. The changes of one
release are applied to the cells in time order: a cell is `cell_blind` when its last watching
device goes down, `cell_watched` when one comes back (or a new one is first heard).

State is in numpy columns by device row (one region may hold many devices); the snapshot is in
engine/state.py.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat

import numpy as np
import shapely

from firewatch.engine.signals import SOURCE_CODE
from firewatch.engine.silence import DOWN, UP, Change, Silences
from firewatch.geo.grid import Cell
from firewatch.model import DeviceEvent, DeviceEventKind, Source, utc_datetime
from firewatch.rules.model import DeviceRules

_EARTH_M = 6_371_008.8


@dataclass
class HealthState:
    """What carries over between batches (engine/state.py writes and reads it): columns by device
    row, and the records waiting for the watermark."""

    ids: list[str] = field(default_factory=list)
    source: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # SOURCE_CODE
    cell: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    lat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lon: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last: np.ndarray = field(default_factory=lambda: np.zeros(0))  # NaN: not yet released
    gap_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    down_at: np.ndarray = field(default_factory=lambda: np.zeros(0))  # NaN: up
    waiting_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # in arrival order
    waiting_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class Health:
    """Per-device last heard and interval, per-cell watchers; events at the watermark."""

    def __init__(
        self,
        rules: DeviceRules,
        cells: Sequence[Cell],
        geoms: np.ndarray,
        regions: np.ndarray,
        locate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> None:
        self.rules = rules
        self.cells = cells
        self._locate = locate  # (lat, lon) -> cell index, -1 outside
        self._regions = regions  # per cell: its region code (incidents.region_level)
        self._geoms = geoms
        self._sources = {code: source for source, code in SOURCE_CODE.items()}
        self._reset()

    def _reset(self) -> None:
        self._s = Silences(self.rules)  # last heard, intervals, down: by device row
        self._row: dict[int, dict[str, int]] = {}  # region code -> device id -> row
        self.ids: list[str] = []
        self._watch: list[np.ndarray] = []  # per device: the cells it watches
        self._cell: list[int] = []  # per device: the cell it stands in
        self._spot: list[tuple[float, float]] = []  # per device: where it stands (lat, lon)
        self._stands = np.zeros((0, 3))  # _cell and _spot as an array, for snapshots (_standing)
        self._watchers = np.zeros(len(self.cells), np.int32)  # heard devices watching each cell
        self._up = np.zeros(len(self.cells), np.int32)  # of those, the ones not down
        self._blind = np.zeros(len(self.cells), bool)
        self._waiting_t: list[np.ndarray] = []
        self._waiting_row: list[np.ndarray] = []

    @property
    def enabled(self) -> bool:
        return bool(self._s.watched.any())

    @property
    def devices(self) -> int:
        return self._s.n

    @property
    def down_count(self) -> int:
        """Devices down now."""
        return int(np.count_nonzero(~np.isnan(self._s.down_at[: self._s.n])))

    @property
    def blind_count(self) -> int:
        """Cells blind now."""
        return int(np.count_nonzero(self._blind))

    # -- input --------------------------------------------------------------------------------
    def admit(
        self,
        t: np.ndarray,
        device: np.ndarray,
        source: np.ndarray,
        cell: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        stations: dict[int, tuple[float, float]],
        in_time: np.ndarray,
    ) -> None:
        """A batch's located records (cell >= 0) of watched sources wait for the watermark. A
        record older than `in_time` (its own bound: the watermark, or the newest event time seen
        before it less the inactivity window) is no sign of life: a device whose records come
        that late (a clock behind) is not watching in time."""
        # nor is a record of no known device (a located message of an earlier format)
        use = (cell >= 0) & self._s.watched[source] & (device != "") & (t >= in_time)
        home = cell.copy()  # the cell the device stands in: a camera's station's, when it says
        if stations:
            at = np.fromiter(stations, np.int64, len(stations))
            where = np.array(list(stations.values()), np.float64).reshape(-1, 2)
            home[at] = self._locate(where[:, 0], where[:, 1])
            # a camera standing in another region is judged there (by its records located
            # there), not by the smoke it sees here; one standing outside the grid is not
            # judged at all (its status records are located nowhere)
            use[at] &= (home[at] >= 0) & (
                self._regions[np.maximum(home[at], 0)] == self._regions[np.maximum(cell[at], 0)]
            )
        take = np.flatnonzero(use)
        if not take.size:
            return
        names = device[take].tolist()
        region = self._regions[home[take]]
        found = np.empty(take.size, np.int64)
        one = region.min() == region.max()  # one region, in a stream worker's engine
        codes = [int(region[0])] if one else np.unique(region).tolist()
        for code in codes:
            at = np.arange(take.size) if len(codes) == 1 else np.flatnonzero(region == code)
            part = names if len(codes) == 1 else [names[k] for k in at.tolist()]
            known = self._row.setdefault(code, {})
            # each record's device row, -1 for a device not known yet, in one C-level pass (two
            # Python loops per record here cost 0.1 us a record: benchmarks/README.md, Engine)
            rows = np.fromiter(map(known.get, part, repeat(-1)), np.int64, len(part))
            for j in np.flatnonzero(rows == -1).tolist():
                k = int(at[j])
                row = known.get(names[k], -1)  # an earlier record of this batch added it?
                if row == -1:
                    i = int(take[k])
                    spot = stations.get(i, (float(lat[i]), float(lon[i])))
                    row = self._register(names[k], int(source[i]), int(home[i]), *spot)
                rows[j] = row
            found[at] = rows
        self._waiting_t.append(t[take])
        self._waiting_row.append(found)

    def release(self, watermark: float) -> list[DeviceEvent]:
        """Take the records at or before the watermark, then call down the devices whose
        deadline it passed; the changes go to the cells together, in time order."""
        changes: list[Change] = []
        if self._waiting_t:
            t = np.concatenate(self._waiting_t)
            row = np.concatenate(self._waiting_row)
            due = t <= watermark
            self._waiting_t, self._waiting_row = [t[~due]], [row[~due]]
            if due.any():
                changes = self._s.take(t[due], row[due])
        if watermark > self._s.next_check:
            changes += self._s.check(watermark)
        return self._apply(changes)

    def _register(self, device: str, source: int, cell: int, lat: float, lon: float) -> int:
        r = self._s.add(source)
        self._row.setdefault(int(self._regions[cell]), {})[device] = r
        self.ids.append(device)
        self._cell.append(cell)
        self._spot.append((lat, lon))
        self._watch.append(self._watched_cells(source, cell, lat, lon))
        return r

    def _watched_cells(self, source: int, cell: int, lat: float, lon: float) -> np.ndarray:
        if source != SOURCE_CODE[Source.CAMERA]:
            return np.array([cell], np.int64)
        c_lat, c_lon = self._centres
        dy = np.radians(c_lat - lat)
        dx = np.radians(c_lon - lon) * math.cos(math.radians(lat))
        near = np.hypot(dx, dy) * _EARTH_M <= self.rules.camera_watch_km * 1000
        near &= self._regions == self._regions[cell]
        near[cell] = True
        return np.flatnonzero(near)

    @cached_property
    def _centres(self) -> tuple[np.ndarray, np.ndarray]:
        """A point inside each cell (lat, lon): where a camera's reach is measured to."""
        points = shapely.point_on_surface(self._geoms)
        return shapely.get_y(points), shapely.get_x(points)

    # -- the cells ----------------------------------------------------------------------------
    def _apply(self, changes: list[Change]) -> list[DeviceEvent]:
        """Device changes to events, in time order, with the cells they blind or restore."""
        changes.sort(key=lambda c: (c[0], c[1], self.ids[c[2]]))
        events: list[DeviceEvent] = []
        for at, kind, r, last, interval in changes:
            cells = self._watch[r]
            if kind == DOWN:
                events.append(
                    self._device_event(DeviceEventKind.DEVICE_DOWN, at, r, last, interval)
                )
                self._up[cells] -= 1
                for c in cells[self._up[cells] == 0].tolist():
                    self._blind[c] = True
                    events.append(self._cell_event(DeviceEventKind.CELL_BLIND, at, c))
                continue
            if kind == UP:
                event = self._device_event(DeviceEventKind.DEVICE_UP, at, r, last, interval)
                events.append(event)
            else:
                events.append(self._device_event(DeviceEventKind.DEVICE_NEW, at, r, at, interval))
                self._watchers[cells] += 1
            self._up[cells] += 1
            for c in cells[self._blind[cells]].tolist():
                self._blind[c] = False
                events.append(self._cell_event(DeviceEventKind.CELL_WATCHED, at, c))
        return events

    def _device_event(
        self, kind: DeviceEventKind, at: float, r: int, last: float, interval: float
    ) -> DeviceEvent:
        device = self.ids[r]
        return DeviceEvent(
            event=kind,
            event_id=_event_id(kind, device, at),
            observed_at=utc_datetime(at),
            device_id=device,
            source=self._sources[int(self._s.source[r])],
            lat=round(self._spot[r][0], 6),
            lon=round(self._spot[r][1], 6),
            last_heard=None if kind is DeviceEventKind.DEVICE_NEW else utc_datetime(last),
            interval_s=None if kind is DeviceEventKind.DEVICE_NEW else round(interval, 3),
            silent_s=round(at - last, 3) if kind is DeviceEventKind.DEVICE_UP else None,
            **_where(self.cells[self._cell[r]]),
        )

    def _cell_event(self, kind: DeviceEventKind, at: float, c: int) -> DeviceEvent:
        cell = self.cells[c]
        c_lat, c_lon = self._centres
        return DeviceEvent(
            event=kind,
            event_id=_event_id(kind, cell.id, at),
            observed_at=utc_datetime(at),
            device_id=None,
            source=None,
            lat=round(float(c_lat[c]), 6),
            lon=round(float(c_lon[c]), 6),
            devices=int(self._watchers[c]),
            **_where(cell),
        )

    # -- state --------------------------------------------------------------------------------
    def state(self) -> HealthState:
        s, n = self._s, self._s.n
        # in arrival order, which the input decides (releases keep it): sorting 260,000 waiting
        # records by (t, row) took 45 ms of a province region's snapshot
        t = np.concatenate([*self._waiting_t, np.empty(0)])
        row = np.concatenate([*self._waiting_row, np.empty(0, np.int64)])
        stands = self._standing()
        return HealthState(
            ids=list(self.ids),
            source=s.source[:n].copy(),
            cell=stands[:, 0].astype(np.int32),
            lat=stands[:, 1].copy(),
            lon=stands[:, 2].copy(),
            last=s.last[:n].copy(),
            gap_ms=s.gap_ms[:n].copy(),
            gaps=s.gaps[:n].copy(),
            down_at=s.down_at[:n].copy(),
            waiting_t=t,
            waiting_row=row,
        )

    def _standing(self) -> np.ndarray:
        """[cell, lat, lon] by device row; only devices new since the last call are converted
        (a province region's 26,000 devices took 5 ms a snapshot)."""
        done = len(self._stands)
        if done < len(self._spot):
            new = [
                (c, lat, lon)
                for c, (lat, lon) in zip(self._cell[done:], self._spot[done:], strict=True)
            ]
            self._stands = np.concatenate([self._stands, np.array(new, np.float64)])
        return self._stands

    def load_state(self, state: HealthState) -> None:
        """Replace everything with a snapshot's (validated by engine/state.py)."""
        self._reset()
        lat, lon = state.lat.tolist(), state.lon.tolist()
        for i, (device, source, cell) in enumerate(
            zip(state.ids, state.source.tolist(), state.cell.tolist(), strict=True)
        ):
            self._register(device, source, cell, lat[i], lon[i])
        s, n = self._s, self._s.n
        s.last[:n] = state.last
        s.down_at[:n] = state.down_at
        s.gap_ms[:n] = state.gap_ms
        s.gaps[:n] = state.gaps
        heard = ~np.isnan(s.last[:n])
        if n:  # each heard device watches its cells; those not down keep them watched
            rows = np.repeat(np.arange(n), [len(w) for w in self._watch])
            cells = np.concatenate(self._watch)
            np.add.at(self._watchers, cells[heard[rows]], 1)
            np.add.at(self._up, cells[(heard & np.isnan(s.down_at[:n]))[rows]], 1)
        self._blind = (self._watchers > 0) & (self._up == 0)
        if len(state.waiting_t):
            self._waiting_t = [state.waiting_t.astype(np.float64)]
            self._waiting_row = [state.waiting_row.astype(np.int64)]
        if n:
            up = heard & np.isnan(s.down_at[:n])
            s.next_check = float(np.where(up, s.last[:n] + s.allowances(), math.inf).min())

    def limit_time(self, bound: float) -> list[str]:
        """Drop waiting records after `bound`, and pull back last-heard times after it
        (Engine.limit_time)."""
        notes = []
        last = self._s.last[: self._s.n]
        ahead = last > bound
        if ahead.any():
            last[ahead] = bound
            notes.append(f"{int(ahead.sum())} devices last heard after it pulled back")
        if self._waiting_t:
            t = np.concatenate(self._waiting_t)
            row = np.concatenate(self._waiting_row)
            keep = t <= bound
            self._waiting_t, self._waiting_row = [t[keep]], [row[keep]]
            if not keep.all():
                notes.append(f"{int((~keep).sum())} device records waiting dropped")
        return notes


def _where(cell: Cell) -> dict[str, str | None]:
    return {
        "grid_id": cell.id,
        "grid_name": cell.name,
        "team": cell.team,
        "village": cell.village,
        "township": cell.township,
        "district": cell.district,
    }


def _event_id(kind: DeviceEventKind, subject: str, at: float) -> str:
    digest = hashlib.blake2b(f"{kind.value}\n{subject}\n{round(at, 3)}".encode(), digest_size=8)
    return f"dev-{digest.hexdigest()}"
