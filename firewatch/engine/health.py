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

import numpy as np
import shapely

from firewatch.engine.signals import SOURCE_CODE
from firewatch.geo.grid import Cell
from firewatch.model import DeviceEvent, DeviceEventKind, Source, utc_datetime
from firewatch.rules.model import DeviceRules

_EARTH_M = 6_371_008.8
_DOWN, _UP, _NEW = 0, 1, 2  # transitions; at one time, in this order
_GROW = 1024
Change = tuple[float, int, int, float, float]  # at, kind, device row, last heard, its interval


@dataclass
class HealthState:
    """What carries over between batches (engine/state.py writes and reads it)."""

    ids: list[str] = field(default_factory=list)
    source: list[int] = field(default_factory=list)  # SOURCE_CODE
    cell: list[int] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    last: list[float | None] = field(default_factory=list)  # None: not yet released
    gap_sum: list[float] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)
    down_at: list[float | None] = field(default_factory=list)
    waiting: list[tuple[float, int]] = field(default_factory=list)  # [t, row]: for the watermark


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
        n_src = max(SOURCE_CODE.values()) + 1
        self._watched = np.zeros(n_src, bool)
        self._default = np.zeros(n_src)
        self._tolerance = np.ones(n_src)
        self._floor = np.zeros(n_src)
        for source, code in SOURCE_CODE.items():
            rule = rules.rule(source)
            if rule is not None:
                self._watched[code] = True
                self._default[code] = rule.interval.total_seconds()
                self._tolerance[code] = rule.tolerance
                self._floor[code] = rule.min_silence.total_seconds()
        self._sources = {code: source for source, code in SOURCE_CODE.items()}
        self._reset()

    def _reset(self) -> None:
        self._row: dict[tuple[int, str], int] = {}  # (region code, device id) -> row
        self.ids: list[str] = []
        self._watch: list[np.ndarray] = []  # per device: the cells it watches
        self._n = 0
        # columns by device row, allocated ahead (_grow)
        self._last = np.full(_GROW, math.nan)  # last heard (event time); NaN: not yet released
        self._down_at = np.full(_GROW, math.nan)  # when it went down; NaN: up
        self._gap_sum = np.zeros(_GROW)  # its interval: gap_sum / gaps
        self._gaps = np.zeros(_GROW, np.int64)
        self._source = np.zeros(_GROW, np.int8)
        self._cell = np.zeros(_GROW, np.int64)
        self._lat = np.zeros(_GROW)  # where it stands
        self._lon = np.zeros(_GROW)
        self._watchers = np.zeros(len(self.cells), np.int32)  # heard devices watching each cell
        self._up = np.zeros(len(self.cells), np.int32)  # of those, the ones not down
        self._blind = np.zeros(len(self.cells), bool)
        self._waiting_t: list[np.ndarray] = []
        self._waiting_row: list[np.ndarray] = []
        self._next_check = math.inf  # no deadline of a device that is up is earlier

    @property
    def enabled(self) -> bool:
        return bool(self._watched.any())

    @property
    def devices(self) -> int:
        return self._n

    def down(self) -> list[str]:
        """The devices down now, by id."""
        return [self.ids[r] for r in np.flatnonzero(~np.isnan(self._down_at[: self._n]))]

    def blind(self) -> list[str]:
        """The cells blind now, by id."""
        return [self.cells[c].id for c in np.flatnonzero(self._blind).tolist()]

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
        use = (cell >= 0) & self._watched[source] & (device != "") & (t >= in_time)
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
        row = np.empty(take.size, np.int64)
        known = self._row
        regions = self._regions[home[take]].tolist()
        for k, (i, region) in enumerate(zip(take.tolist(), regions, strict=True)):
            r = known.get((region, device[i]))
            if r is None:
                station = stations.get(i)
                spot = (lat[i], lon[i]) if station is None else station
                r = self._register(device[i], int(source[i]), int(home[i]), *spot)
            row[k] = r
        self._waiting_t.append(t[take])
        self._waiting_row.append(row)

    def release(self, watermark: float) -> list[DeviceEvent]:
        """Take the records at or before the watermark, in event-time order, then call down the
        devices whose deadline it passed; the changes go to the cells together, in time order."""
        changes: list[Change] = []
        if self._waiting_t:
            t = np.concatenate(self._waiting_t)
            row = np.concatenate(self._waiting_row)
            due = t <= watermark
            self._waiting_t, self._waiting_row = [t[~due]], [row[~due]]
            if due.any():
                t, row = t[due], row[due]
                order = np.lexsort((row, t))
                changes = self._take(t[order], row[order])
        if watermark > self._next_check:
            changes += self._check(watermark)
        return self._apply(changes)

    # -- the devices --------------------------------------------------------------------------
    def _take(self, t: np.ndarray, row: np.ndarray) -> list[Change]:
        """Records in event-time order: first reports, gaps learned, the silences that were too
        long (down at the deadline, up at the record)."""
        changes: list[Change] = []
        last = self._last
        for ti, r in zip(t.tolist(), row.tolist(), strict=True):
            before = last[r]
            if math.isnan(before):  # its first record
                changes.append((ti, _NEW, r, ti, 0.0))
            elif ti <= before:  # heard already at a later time
                continue
            else:
                self._gap(r, ti, ti - before, changes)
            last[r] = ti
            self._next_check = min(self._next_check, ti + self._allowance(r, self._interval(r)))
        return changes

    def _gap(self, r: int, ti: float, gap: float, changes: list[Change]) -> None:
        """A record `gap` after the device's last: learned, or the end of a silence."""
        before, down_at = self._last[r], self._down_at[r]
        interval = self._interval(r)
        allowance = self._allowance(r, interval)
        silent = not math.isnan(down_at)
        if silent:
            changes.append((ti, _UP, r, before, interval))
        elif gap > allowance:
            changes.append((before + allowance, _DOWN, r, before, interval))
            changes.append((ti, _UP, r, before, interval))
            silent = True
        if not silent or self._gaps[r] < self.rules.learn_after:
            self._gap_sum[r] += gap
            self._gaps[r] += 1
        self._down_at[r] = math.nan

    def _check(self, watermark: float) -> list[Change]:
        n = self._n
        last = self._last[:n]
        up = ~np.isnan(last) & np.isnan(self._down_at[:n])
        deadline = np.where(up, last + self._allowances(), math.inf)
        gone = np.flatnonzero(deadline < watermark)
        changes: list[Change] = []
        for r in gone.tolist():
            changes.append((float(deadline[r]), _DOWN, r, float(last[r]), self._interval(r)))
            self._down_at[r] = deadline[r]
        deadline[gone] = math.inf
        self._next_check = float(deadline.min()) if n else math.inf
        return changes

    def _interval(self, r: int) -> float:
        """Its mean gap, to the minute (so that one record more or less, late or not, rarely
        moves it), or before `learn_after` gaps at least the source's `interval`."""
        gaps = int(self._gaps[r])
        mean = _to_minute(float(self._gap_sum[r]) / gaps) if gaps else 0.0
        if gaps >= self.rules.learn_after:
            return mean
        return max(mean, float(self._default[self._source[r]]))

    def _allowance(self, r: int, interval: float) -> float:
        code = self._source[r]
        return float(max(self._floor[code], self._tolerance[code] * interval))

    def _allowances(self) -> np.ndarray:
        n = self._n
        code = self._source[:n]
        gaps = self._gaps[:n]
        mean = np.divide(self._gap_sum[:n], gaps, out=np.zeros(n), where=gaps > 0)
        mean = np.where(mean >= 90.0, np.round(mean / 60.0) * 60.0, np.round(mean))  # _to_minute
        interval = np.where(
            gaps >= self.rules.learn_after, mean, np.maximum(mean, self._default[code])
        )
        return np.maximum(self._floor[code], self._tolerance[code] * interval)

    def _register(self, device: str, source: int, cell: int, lat: float, lon: float) -> int:
        r = self._n
        if r == len(self._last):
            self._grow()
        self._row[(int(self._regions[cell]), device)] = r
        self.ids.append(device)
        self._source[r], self._cell[r] = source, cell
        self._lat[r], self._lon[r] = lat, lon
        self._last[r] = self._down_at[r] = math.nan
        self._gap_sum[r], self._gaps[r] = 0.0, 0
        self._watch.append(self._watched_cells(source, cell, lat, lon))
        self._n = r + 1
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

    def _grow(self) -> None:
        """Room for twice as many devices (the columns are allocated ahead)."""
        size = 2 * len(self._last)

        def grown(old: np.ndarray, fill: float) -> np.ndarray:
            new = np.full(size, fill, old.dtype)
            new[: len(old)] = old
            return new

        self._last = grown(self._last, math.nan)
        self._down_at = grown(self._down_at, math.nan)
        self._gap_sum = grown(self._gap_sum, 0.0)
        self._gaps = grown(self._gaps, 0)
        self._source = grown(self._source, 0)
        self._cell = grown(self._cell, 0)
        self._lat = grown(self._lat, 0.0)
        self._lon = grown(self._lon, 0.0)

    # -- the cells ----------------------------------------------------------------------------
    def _apply(self, changes: list[Change]) -> list[DeviceEvent]:
        """Device changes to events, in time order, with the cells they blind or restore."""
        changes.sort(key=lambda c: (c[0], c[1], self.ids[c[2]]))
        events: list[DeviceEvent] = []
        for at, kind, r, last, interval in changes:
            cells = self._watch[r]
            if kind == _DOWN:
                events.append(
                    self._device_event(DeviceEventKind.DEVICE_DOWN, at, r, last, interval)
                )
                self._up[cells] -= 1
                for c in cells[self._up[cells] == 0].tolist():
                    self._blind[c] = True
                    events.append(self._cell_event(DeviceEventKind.CELL_BLIND, at, c))
                continue
            if kind == _UP:
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
            source=self._sources[int(self._source[r])],
            lat=round(float(self._lat[r]), 6),
            lon=round(float(self._lon[r]), 6),
            last_heard=None if kind is DeviceEventKind.DEVICE_NEW else utc_datetime(last),
            interval_s=None if kind is DeviceEventKind.DEVICE_NEW else round(interval, 3),
            silent_s=round(at - last, 3) if kind is DeviceEventKind.DEVICE_UP else None,
            **_where(self.cells[int(self._cell[r])]),
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
        n = self._n
        waiting = sorted(
            zip(
                np.concatenate([*self._waiting_t, np.empty(0)]).tolist(),
                np.concatenate([*self._waiting_row, np.empty(0, np.int64)]).tolist(),
                strict=True,
            )
        )
        return HealthState(
            ids=list(self.ids),
            source=self._source[:n].tolist(),
            cell=self._cell[:n].tolist(),
            lat=self._lat[:n].tolist(),
            lon=self._lon[:n].tolist(),
            last=[None if math.isnan(x) else x for x in self._last[:n].tolist()],
            gap_sum=self._gap_sum[:n].tolist(),
            gaps=self._gaps[:n].tolist(),
            down_at=[None if math.isnan(x) else x for x in self._down_at[:n].tolist()],
            waiting=[(t, r) for t, r in waiting],
        )

    def load_state(self, state: HealthState) -> None:
        """Replace everything with a snapshot's (validated by engine/state.py)."""
        self._reset()
        for i, device in enumerate(state.ids):
            self._register(device, state.source[i], state.cell[i], state.lat[i], state.lon[i])
        n = self._n
        self._last[:n] = [math.nan if x is None else x for x in state.last]
        self._down_at[:n] = [math.nan if x is None else x for x in state.down_at]
        self._gap_sum[:n] = state.gap_sum
        self._gaps[:n] = state.gaps
        for r in range(n):
            if not math.isnan(self._last[r]):
                cells = self._watch[r]
                self._watchers[cells] += 1
                if math.isnan(self._down_at[r]):
                    self._up[cells] += 1
        self._blind = (self._watchers > 0) & (self._up == 0)
        if state.waiting:
            t, row = zip(*state.waiting, strict=True)
            self._waiting_t = [np.array(t, np.float64)]
            self._waiting_row = [np.array(row, np.int64)]
        if n:
            up = ~np.isnan(self._last[:n]) & np.isnan(self._down_at[:n])
            deadline = np.where(up, self._last[:n] + self._allowances(), math.inf)
            self._next_check = float(deadline.min())

    def limit_time(self, bound: float) -> list[str]:
        """Drop waiting records after `bound`, and pull back last-heard times after it
        (Engine.limit_time)."""
        notes = []
        last = self._last[: self._n]
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


def _to_minute(seconds: float) -> float:
    """A mean interval to the minute (to the second below 90 s); as in `_allowances`."""
    return round(seconds / 60.0) * 60.0 if seconds >= 90.0 else float(round(seconds))


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
