"""The engine: validated detections in, incident events out. Pure: no clock, no environment.

    validate (firewatch.ingest) -> locate (firewatch.geo) -> rules (signals.py)
    -> grace buffer (here) -> incidents (incidents.py) -> IncidentEvent

Event time drives everything. The watermark is the largest observed_at seen minus the grace
period; fire signals wait in a buffer until the watermark passes them and are then handed to the
tracker in (event time, detection id) order, so input late by up to the grace period gives the same
incidents as sorted input. A signal later than that is processed at once (counted `late`); one
older than the watermark, or than the latest event time that arrived before it less the grace
period, by more than the inactivity window can join nothing and is counted `stale` and dropped.
Duplicate fire signals (same detection id) are dropped (counted `duplicates`). Every located
record in time is also a sign of life of its device (health.py: device_down / device_up, blind
cells), released with the same watermark; its events are merged with the incident events in
event time.
A live worker may move the watermark with an injected clock (`advance`), so incidents close even
when the stream is quiet; a replay never does.

Event time must not run ahead of the wall clock: one device whose clock is wrong would otherwise
move the watermark for everyone, close every open incident and make every later record stale.
The engine reads no clock: `process_lines(..., now=)` rejects a detection observed more than
`sources.max_future` after the caller's `now` (`future_timestamp`, see firewatch.ingest), and
`limit_time` repairs state that already holds such a jump (a snapshot from an earlier version).
Stage durations are measured only with a timer the caller injects (`Engine.laps.timer`,
stats.py), for its metrics; by default nothing is timed.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

import numpy as np
import shapely

from firewatch.engine.health import Health
from firewatch.engine.incidents import Tracker
from firewatch.engine.located import Located
from firewatch.engine.sights import cell_on_line
from firewatch.engine.signals import (
    SOURCE_CODE,
    Columns,
    CompiledMask,
    Signal,
    Strength,
    make_signal,
    strengths,
    suppressed,
)
from firewatch.engine.state import (
    EngineState,
    StateError,
    cells_key,
    decode,
    encode,
    mask_delta,
    masks_from_delta,
)
from firewatch.engine.stats import EngineStats, Laps
from firewatch.geo.grid import Grid
from firewatch.geo.index import LocateIndex
from firewatch.geo.sight import Sight
from firewatch.ingest.validate import check_lines, detection_id, gc_paused
from firewatch.model import (
    AnyDetection,
    DeviceEvent,
    Event,
    IncidentEvent,
    Outcome,
    Reject,
    Source,
)
from firewatch.rules.model import Mask, RuleSet

EventT = TypeVar("EventT", bound=Event)


@dataclass
class EngineOutput:
    events: list[Event]
    rejects: list[Reject]


class Engine:
    def __init__(self, grid: Grid, index: LocateIndex, rules: RuleSet) -> None:
        self.grid = grid
        self.index = index
        self.rules = rules
        self.tracker = Tracker(rules, grid.cells, self._locate_xy_ll, self._masked_at_place)
        self.health = Health(
            rules.devices, grid.cells, grid.geoms, self._region_codes[0], self._locate_xy_ll
        )
        self.stats = EngineStats()
        # stage durations, when the caller sets `laps.timer` (stats.py): the engine reads no clock
        self.laps = Laps()
        districts = sorted({c.district or "" for c in grid.cells})
        self._districts = districts
        where = {name: i for i, name in enumerate(districts)}
        self._cell_district = np.array([where[c.district or ""] for c in grid.cells], np.int64)
        self._masks = {m.name: CompiledMask.compile(m) for m in rules.masks}
        self._grace = rules.incidents.grace.total_seconds()
        self._inactivity = rules.incidents.inactivity.total_seconds()
        # how long a fire signal's id is remembered (the dedup window): rules.incidents
        self._retention = rules.incidents.dedup_window.total_seconds() + self._grace
        self._buffer: list[tuple[float, str, Signal]] = []  # heap by (event time, id)
        self._seen: set[str] = set()
        self._seen_order: deque[tuple[float, str]] = deque()
        self._max_t = -math.inf
        self._watermark = -math.inf

    # -- input --------------------------------------------------------------------------------
    def process_lines(
        self,
        lines: Sequence[bytes],
        origin: str,
        first_line: int = 1,
        offsets: Sequence[int] | None = None,
        *,
        now: datetime | None = None,
    ) -> EngineOutput:
        """JSON records (one per element) to events; bad records come back as rejects.

        `now` is the wall-clock time the lines arrived, from the caller's clock: a detection
        observed more than rules.sources.max_future after it is rejected (future_timestamp).
        Without it, no event time is too far ahead."""
        not_after = None if now is None else self.not_after(now)
        with gc_paused():  # the batch's dicts are freed before a collection could meet them
            checked = check_lines(lines, origin, first_line, offsets, not_after=not_after)
            self.count_rejects(checked.rejects)
            output = EngineOutput(self.process(checked.detections, t=checked.t), checked.rejects)
            del checked
        return output

    def not_after(self, now: datetime) -> datetime:
        """The latest event time accepted from records arriving at wall-clock time `now`:
        now + rules.sources.max_future (pass it to firewatch.ingest's `not_after`)."""
        return now + self.rules.sources.max_future

    def count_rejects(self, rejects: Sequence[Reject]) -> None:
        self.stats.records += len(rejects)
        self.stats.rejected.update(r.reason.value for r in rejects)
        self.stats.outcomes[Outcome.REJECTED] += len(rejects)

    def process(
        self, batch: list[AnyDetection], *, hold: bool = False, t: np.ndarray | None = None
    ) -> list[Event]:
        """Validated detections to incident events (those the watermark lets through).

        By default the batch's latest event time moves the watermark. With `hold`, it does not:
        the caller moves it with `advance` (a stream worker whose input interleaves several
        sources takes the least advanced source's progress, so none of them looks late). `t`:
        as for `prepare`."""
        if not batch:
            return []
        return self.process_located(self.prepare(batch, t), hold=hold)

    def prepare(self, batch: list[AnyDetection], t: np.ndarray | None = None) -> Located:
        """Locate a batch and read its per-record rules (fire signal strength before masks): the
        part of `process` that needs the records themselves. Changes no state and counts
        nothing; `process_located` does the rest (a stream worker does the two in different
        stages). A camera outside every cell that sends its sight goes to a cell on its line
        (`_route_outside_cameras`). `t`: the records' event times in epoch seconds, when
        validation computed them (check_lines)."""
        laps = self.laps
        began = laps.start()
        cols = Columns.of(batch, t)
        cell = self._locate(cols)
        self._route_outside_cameras(batch, cols, cell)
        began = laps.lap("locate", began)
        strength = strengths(batch, cols, self.rules)
        strength[cell < 0] = 0
        static = np.zeros(len(batch), dtype=bool)
        if self.rules.sources.satellite.suppress_static:
            satellites = np.flatnonzero(cols.source == SOURCE_CODE[Source.SATELLITE])
            static[satellites] = [bool(batch[i].get("static")) for i in satellites]
        signals = {
            i: make_signal(d, detection_id(d), float(cols.t[i]), int(strength[i]), int(cell[i]))
            for i in np.flatnonzero(strength).tolist()
            for d in (batch[i],)
        }
        laps.lap("rules", began)
        return Located(
            cols, cell, strength, static, signals, self._cells_key, *_devices(batch, cols)
        )

    def process_located(self, batch: Located, *, hold: bool = False) -> list[Event]:
        """`process` from a prepared batch: masks, counts, the grace buffer and incidents. A batch
        located on another grid (a worker of another configuration prepared it) is located
        again on this engine's."""
        n = len(batch)
        if not n:
            return []
        if batch.grid != self._cells_key:
            batch = self._relocated(batch)
        self.stats.records += n
        laps = self.laps
        t = laps.start()
        cols, cell = batch.cols, batch.cell
        strength = batch.strength.copy()
        located = cell >= 0
        masks = list(self._masks.values())
        supp, by_mask = suppressed(batch.static, cols, masks, self.rules, strength > 0)
        strength[~located | supp] = 0
        self._count(cols, cell, supp, strength, by_mask)
        t = laps.lap("rules", t)
        events: list[Event] = []
        # the latest event time seen before each record, in arrival order (for `stale`)
        before = np.maximum.accumulate(np.concatenate(([self._max_t], cols.t[:-1])))
        if self.health.enabled:
            self._admit_devices(batch, np.maximum(before - self._inactivity, self._watermark))
        for i in np.flatnonzero(strength).tolist():
            events += self._admit(batch.signals[i], float(before[i]))
        self._max_t = max(self._max_t, float(cols.t.max()))
        if not hold:
            events += self._release(self._max_t - self._grace)
        laps.lap("incidents", t)
        return events

    def _relocated(self, batch: Located) -> Located:
        cell = self._locate(batch.cols)
        if self.rules.triangulation.enabled:  # cameras outside the grid, as prepare routes them
            reach = self.rules.triangulation.max_range_km * 1000
            for i, s in batch.signals.items():
                if cell[i] < 0 and s.sight is not None:
                    cell[i] = cell_on_line(s.sight, reach, self._locate_xy_ll)
        strength = np.where(cell >= 0, batch.strength, 0).astype(np.int8)
        signals = {
            i: dataclasses.replace(s, cell=int(cell[i]))
            for i, s in batch.signals.items()
            if cell[i] >= 0
        }
        return dataclasses.replace(
            batch, cell=cell, strength=strength, signals=signals, grid=self._cells_key
        )

    def regions(self, batch: Located) -> tuple[np.ndarray, list[str]]:
        """Each record's region (incidents.region_level of its cell; `*` without a level) as an
        index into the names returned, -1 outside every cell: how stream workers route
        detections to incident state."""
        codes, names = self._region_codes
        return np.where(batch.cell >= 0, codes[batch.cell], -1), names

    @cached_property
    def _region_codes(self) -> tuple[np.ndarray, list[str]]:
        level = self.rules.incidents.region_level
        keys = [((getattr(c, level) or "-") if level else "*") for c in self.grid.cells]
        names = sorted(set(keys))
        where = {name: i for i, name in enumerate(names)}
        return np.array([where[k] for k in keys], np.int64), names

    def advance(self, now: datetime) -> list[Event]:
        """Move the watermark to `now` minus the grace period: a live worker's clock tick, or the
        progress of the slowest source when batches are processed with `hold`."""
        t = self.laps.start()
        events = self._release(now.timestamp() - self._grace)
        self.laps.lap("incidents", t)
        return events

    def flush(self, until: datetime | None = None) -> list[Event]:
        """End of input: release every buffered signal; close what the last event time closes
        (or `until`, when later: the last event time of the whole stream, for a region's engine
        in a stream worker)."""
        last = self._max_t if until is None else max(self._max_t, until.timestamp())
        t = self.laps.start()
        events = self._release(last)
        self.laps.lap("incidents", t)
        return events

    def limit_time(self, limit: datetime) -> str | None:
        """Repair state whose event time is after `limit` (e.g. a snapshot of an earlier version
        that let one record from a clock far ahead move it); a worker passes `not_after(now)`.

        When the latest event time or the watermark is after `limit`, the latest event time is
        pulled back to `limit` and the watermark to `limit` minus the grace period; fire signals
        buffered and detection ids remembered with an event time after `limit` are dropped, and
        so are the tracker's pending suspects and incidents from after it (Tracker.limit_time).
        Returns what was repaired, for the caller to log naming the region; None when nothing
        was after `limit`. What the jump already did (incidents closed early, ids forgotten) is
        not undone."""
        bound = limit.timestamp()
        if self._max_t <= bound and self._watermark <= bound:
            return None  # every event time the state holds is at most one of these two
        notes = []
        if self._max_t > bound:
            notes.append(f"latest event time {_iso(self._max_t)} -> {_iso(bound)}")
            self._max_t = bound
        if self._watermark > bound - self._grace:
            notes.append(f"watermark {_iso(self._watermark)} -> {_iso(bound - self._grace)}")
            self._watermark = bound - self._grace
        buffered = [entry for entry in self._buffer if entry[0] <= bound]
        if len(buffered) < len(self._buffer):
            notes.append(f"{len(self._buffer) - len(buffered)} buffered fire signals dropped")
            heapq.heapify(buffered)
            self._buffer = buffered
        seen = deque(entry for entry in self._seen_order if entry[0] <= bound)
        if len(seen) < len(self._seen_order):
            notes.append(f"{len(self._seen_order) - len(seen)} remembered detection ids dropped")
            self._seen_order = seen
            self._seen = {i for _, i in seen}
        notes += self.tracker.limit_time(bound)
        notes += self.health.limit_time(bound)
        return "; ".join(notes)

    @property
    def districts(self) -> list[str]:
        """The grid's district names ("" for cells without one), as `stats.located` names them."""
        return self._districts

    # -- masks (the closed loop: a false-alarm closure becomes a mask) ------------------------
    @property
    def masks(self) -> list[Mask]:
        return [cm.mask for cm in self._masks.values()]

    def add_mask(self, mask: Mask) -> None:
        self._masks[mask.name] = CompiledMask.compile(mask)

    def remove_mask(self, name: str) -> bool:
        return self._masks.pop(name, None) is not None

    # -- state: saved per batch by a Kafka worker, restored when its partition is assigned -----
    def snapshot(self) -> bytes:
        """Everything that carries over between batches, as versioned JSON (engine/state.py)."""
        runtime, removed = mask_delta(self.masks, self.rules.masks)
        state = EngineState(
            cells=self._cells_key,
            max_t=self._max_t,
            watermark=self._watermark,
            buffer=[s for _, _, s in self._buffer],
            seen=list(self._seen_order),
            masks=runtime,
            masks_removed=removed,
            tracker=self.tracker.state(),
            stats=self.stats.state(),
            devices=self.health.state(),
        )
        return encode(state)

    def restore(self, data: bytes) -> None:
        """Continue from a snapshot: replaces all of this engine's state (on an engine built with
        the same grid; the rules may have changed). A StateError leaves the engine unchanged."""
        state = decode(data, self.grid.cells)
        masks = masks_from_delta(self.rules.masks, state.masks, state.masks_removed)
        compiled = {m.name: self._compiled(m) for m in masks}
        self._masks = compiled
        self._buffer = [(s.t, s.id, s) for s in state.buffer]
        heapq.heapify(self._buffer)
        self._seen_order = deque(state.seen)
        self._seen = {i for _, i in state.seen}
        self._max_t = state.max_t
        self._watermark = state.watermark
        self.tracker.load_state(state.tracker)
        self.health.load_state(state.devices)
        self.stats = EngineStats.from_state(state.stats)

    @cached_property
    def _cells_key(self) -> str:
        return cells_key(self.grid.cells)

    def _compiled(self, mask: Mask) -> CompiledMask:
        known = self._masks.get(mask.name)
        if known is not None and known.mask == mask:
            return known
        try:
            return CompiledMask.compile(mask)
        except Exception as exc:  # shapely's errors for a geometry it cannot build
            raise StateError(f"engine state mask {mask.name!r} has no usable shape: {exc}") from exc

    # -- internals ----------------------------------------------------------------------------
    def _locate(self, cols: Columns) -> np.ndarray:
        return self._locate_xy(cols.lon, cols.lat)

    def _locate_xy(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        cell = self.index.locate(lon, lat)
        buffer_m = self.rules.incidents.outside_buffer_m
        if buffer_m > 0:
            out = np.flatnonzero(cell < 0)
            if out.size:
                cell[out] = self.grid.nearest_within(lon[out], lat[out], buffer_m)
        return cell

    def _count(
        self,
        cols: Columns,
        cell: np.ndarray,
        supp: np.ndarray,
        strength: np.ndarray,
        by_mask: dict[str, int],
    ) -> None:
        """Outcomes decided per batch (fire signals are counted as they are admitted), and the
        located detections per source and district."""
        located = cell >= 0
        outcomes = {
            Outcome.OUTSIDE: ~located,
            Outcome.SUPPRESSED: supp,
            Outcome.IGNORED: located & ~supp & (strength == 0),
        }
        self.stats.add_batch(cols.source, outcomes)
        self.stats.add_located(
            cols.source[located], self._cell_district[cell[located]], self._districts
        )
        self.stats.suppressed_by.update(by_mask)

    def _admit(self, s: Signal, newest: float) -> list[Event]:
        """Buffer a fire signal, or process it at once when it is later than the grace period.

        Stale: older than the watermark by more than the inactivity window, or than `newest`
        (the latest event time that arrived before it) less the grace period: so a device whose
        clock is days behind is stale even before there is a watermark (the first batch of a
        replay, a stream worker waiting for every partition's progress), and the verdict does
        not depend on where batches begin."""
        stats = self.stats
        if s.id in self._seen:
            stats.add(Outcome.DUPLICATE, s.source)
            return []
        if s.t < max(self._watermark, newest - self._grace) - self._inactivity:
            stats.add(Outcome.STALE, s.source)
            return []
        stats.add(Outcome.SUSPECT if s.strength is Strength.SUSPECT else Outcome.INCIDENT, s.source)
        self._seen.add(s.id)
        self._seen_order.append((s.t, s.id))
        if s.t >= self._watermark:
            heapq.heappush(self._buffer, (s.t, s.id, s))
            return []
        stats.add_late(s.source)
        return self._record(self.tracker.step(s))

    def _release(self, watermark: float) -> list[Event]:
        """Fire signals and device records up to the watermark; their events merged in event
        time (incident events first at one time), so that where batches begin changes nothing."""
        events: list[IncidentEvent] = []
        while self._buffer and self._buffer[0][0] <= watermark:
            _, _, s = heapq.heappop(self._buffer)
            events += self.tracker.close_before(s.t)
            events += self.tracker.step(s)
        devices: list[DeviceEvent] = []
        if watermark > self._watermark:
            self._watermark = watermark
            events += self.tracker.close_before(watermark)
            self._forget(watermark)
            if self.health.enabled:
                devices = self.health.release(watermark)
        if not devices:
            return self._record(events)
        return self._record(list(heapq.merge(events, devices, key=_EVENT_TIME)))

    def _admit_devices(self, batch: Located, in_time: np.ndarray) -> None:
        """Every located record in time says its device is alive (engine/health.py): not older
        than the watermark, nor than the latest event time before it by more than the
        inactivity window (`in_time`, per record: `stale`, as for fire signals)."""
        cols = batch.cols
        self.health.admit(
            cols.t,
            batch.device,
            cols.source,
            batch.cell,
            cols.lat,
            cols.lon,
            batch.stations,
            in_time,
        )

    def _route_outside_cameras(
        self, batch: list[AnyDetection], cols: Columns, cell: np.ndarray
    ) -> None:
        """A camera record outside every cell that says where the camera stands and the smoke's
        bearing (a tower on a hill outside the forest grid) goes to the cell half-way along the
        stretch of its line in the grid, so its region takes it and its sights place it; without
        a sight, or with triangulation off, it stays outside. Per record: no state."""
        triangulation = self.rules.triangulation
        if not triangulation.enabled:
            return
        camera = SOURCE_CODE[Source.CAMERA]
        for i in np.flatnonzero((cell < 0) & (cols.source == camera)).tolist():
            rec: Mapping[str, Any] = batch[i]
            lat, lon = rec.get("camera_lat"), rec.get("camera_lon")
            bearing = rec.get("bearing_deg")
            if lat is not None and lon is not None and bearing is not None:
                sight = Sight(lat, lon, bearing)
                cell[i] = cell_on_line(sight, triangulation.max_range_km * 1000, self._locate_xy_ll)

    def _locate_xy_ll(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return self._locate_xy(lon, lat)

    def _masked_at_place(self, s: Signal) -> bool:
        """Whether a mask covers a camera signal where its sights placed it (its record's own
        position, often the tower's, was checked with the batch): it is then dropped, and counted
        under the mask's name in `suppressed_by` (its outcome stays what it was admitted as)."""
        for cm in self._masks.values():
            if (
                s.source in cm.sources
                and cm.start <= s.t < cm.end
                and shapely.contains_xy(cm.geom, s.lon, s.lat)
            ):
                self.stats.suppressed_by[cm.mask.name] += 1
                return True
        return False

    def _record(self, events: Sequence[EventT]) -> list[EventT]:
        self.stats.events.update(e.event.value for e in events)
        return list(events)

    def _forget(self, watermark: float) -> None:
        """Forget detection ids too old to matter: a copy that old is stale anyway."""
        horizon = watermark - self._retention
        while self._seen_order and self._seen_order[0][0] < horizon:
            self._seen.discard(self._seen_order.popleft()[1])


def _devices(
    batch: list[AnyDetection], cols: Columns
) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Each record's device id, and where each camera that says so stands (row -> lat, lon)."""
    device = np.fromiter(map(_DEVICE_ID, batch), object, len(batch))
    stations = {}
    for i in np.flatnonzero(cols.source == SOURCE_CODE[Source.CAMERA]).tolist():
        rec: Mapping[str, Any] = batch[i]
        lat, lon = rec.get("camera_lat"), rec.get("camera_lon")
        if lat is not None and lon is not None:
            stations[i] = (lat, lon)
    return device, stations


_DEVICE_ID = itemgetter("device_id")
_EVENT_TIME = attrgetter("observed_at")


def _iso(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).isoformat()
    except (OverflowError, OSError, ValueError):  # beyond year 9999: say it as it is
        return f"{t:g} s after the epoch"
