"""Engine snapshots: everything the engine carries from one batch to the next, as versioned bytes.

A Kafka worker keeps one snapshot per region key in a changelog-backed table: it saves
`Engine.snapshot()` after each batch and calls `Engine.restore(data)` on a fresh engine when the
partition is (re)assigned. Feeding the rest of the stream to the restored engine gives the events
an uninterrupted engine would have given, byte for byte. A snapshot may hold event time from a
clock far ahead (taken before records were checked against the clock on arrival): after the
restore, `Engine.limit_time(clock now + sources.max_future)` repairs it and says what it did.

Format, version 4: one JSON object (orjson, compact, keys sorted; floats round-trip exactly).
Versions 1 (before incidents followed spreading fires), 2 (before cameras were placed by their
sights) and 3 (before device health) are still read: an incident without `recent`, `extent` and
`teams` gets its first detection for each, one without `place` its first detection's place; a
signal row of 11 fields has no sight and was placed where its record said; a state without
`devices` knows no device yet.

    v              4
    cells          fingerprint of the grid's cell ids in order (signals name cells by index)
    max_t          the largest event time seen, epoch seconds (null: no record yet)
    watermark      epoch seconds (null: not moved yet)
    buffer         signals waiting for the watermark, in (event time, detection id) order
    seen           [t, detection id] of admitted fire signals, in admission order: the dedup
                   window (rules: incidents.dedup_window; the order decides when each id is
                   forgotten)
    masks          masks set at run time (`add_mask`), in the engine's order: new names, and
                   rule masks replaced by another version
    masks_removed  names of rule masks the engine does not apply where the rules put them
                   (removed at run time; or removed and added again, then also in `masks`)
    tracker        open: incidents by id, every field of `Incident` (anchor: a signal; recent:
                   its last detections as [t, lat, lon, pixel_km, cell]; extent: [west, south,
                   east, north] of all its detections; teams: of the cells reached, in order;
                   place: [lat, lon, cell, located_by, uncertainty_m]); max_pixel; pending:
                   suspects in arrival order; suspects_expired; sights: [signal, incident id or
                   null, its record's own range in m or null] of the camera signals with a sight,
                   in arrival order (engine/sights.py)
    stats          `EngineStats`: records, late and the counters, so they continue after a
                   restore (they count since the state began, not since the process started)
    devices        device health (engine/health.py), columns by device row: ids (a list), and
                   as base64 of little-endian arrays (DEVICE_COLUMNS; version 4 wrote JSON lists,
                   null for NaN, and waiting as [t, row] pairs): source (code), cell, lat, lon
                   (where it stands), last (last heard, NaN: none released yet), gap_ms and gaps
                   (its interval learned: gaps summed in ms), down_at (NaN: up); waiting_t and
                   waiting_row: its records waiting for the watermark, in arrival order. The
                   cells each device watches, and each cell's watchers, are rebuilt from these.

A signal is an array [id, t, lat, lon, source, device, strength, cell, frp, pixel_km, flame,
sight, located_by, uncertainty_m]; sight: [camera_lat, camera_lon, bearing_deg] or null.

Not in it: configuration (grid, locate index, rules) and what is rebuilt from the lists above:
the seen-id set, the buffer heap, compiled mask geometries, and the tracker's anchor and suspect
indexes and deadline heap. Rule masks are configuration, so the snapshot holds only the run-time
change to them: a rules deploy between snapshot and restore applies to the restored engine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NotRequired

import numpy as np
import orjson
from pydantic import (
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from firewatch.engine.health import HealthState
from firewatch.engine.incidents import Incident, Place, Point, TrackerState
from firewatch.engine.signals import SOURCE_CODE, Signal, Strength
from firewatch.errors import FirewatchError
from firewatch.geo.grid import Cell
from firewatch.geo.sight import Sight
from firewatch.model import SOURCES, LocatedBy, Severity, Source
from firewatch.rules.model import Mask

VERSION = 5
READABLE = (1, 2, 3, 4, 5)  # versions decode() accepts


class StateError(FirewatchError):
    """A snapshot cannot be restored: not a snapshot, an unknown version, corrupt, another grid."""


# -- the wire format (validated on restore) ---------------------------------------------------
SightRow = tuple[StrictFloat, StrictFloat, StrictFloat]  # camera_lat, camera_lon, bearing_deg
SignalRow = tuple[
    StrictStr,  # id
    StrictFloat,  # t
    StrictFloat,  # lat
    StrictFloat,  # lon
    Source,
    StrictStr,  # device
    Strength,
    StrictInt,  # cell
    StrictFloat,  # frp
    StrictFloat,  # pixel_km
    StrictBool,  # flame
    SightRow | None,  # version 3 on (decode gives older rows these three)
    LocatedBy,
    StrictFloat | None,  # uncertainty_m
]
_PLACED_AS_RECORDED = [None, LocatedBy.DETECTION.value, None]  # what a row before version 3 means
PlaceRow = tuple[StrictFloat, StrictFloat, StrictInt, LocatedBy, StrictFloat | None]


PointRow = tuple[
    StrictFloat, StrictFloat, StrictFloat, StrictFloat, StrictInt
]  # t lat lon pixel cell


@with_config(ConfigDict(extra="forbid"))
class IncidentDoc(TypedDict):
    id: StrictStr
    anchor: SignalRow
    rule: StrictStr
    first_seen: StrictFloat
    last_seen: StrictFloat
    counts: dict[Source, StrictInt]
    detections: StrictInt
    max_frp: StrictFloat
    flame: StrictBool
    evidence: list[StrictStr]
    severity: Severity
    seq: StrictInt
    recent: NotRequired[list[PointRow]]  # version 2 on
    extent: NotRequired[tuple[StrictFloat, StrictFloat, StrictFloat, StrictFloat]]
    teams: NotRequired[list[StrictStr]]
    place: NotRequired[PlaceRow]  # version 3 on


@with_config(ConfigDict(extra="forbid"))
class TrackerDoc(TypedDict):
    open: list[IncidentDoc]
    max_pixel: StrictFloat
    pending: list[SignalRow]
    suspects_expired: StrictInt
    # version 3 on: [signal, incident id, its record's own range in m]
    sights: NotRequired[list[tuple[SignalRow, StrictStr | None, StrictFloat | None]]]


@with_config(ConfigDict(extra="forbid"))
class StatsState(TypedDict):
    records: StrictInt
    late: StrictInt
    rejected: dict[StrictStr, StrictInt]
    outcomes: dict[StrictStr, StrictInt]
    suppressed_by: dict[StrictStr, StrictInt]
    events: dict[StrictStr, StrictInt]


@with_config(ConfigDict(extra="forbid"))
class PackedDevicesDoc(TypedDict):
    """Version 5: each numeric column as base64 of its little-endian array (DEVICE_COLUMNS)."""

    ids: list[StrictStr]
    source: StrictStr
    cell: StrictStr
    lat: StrictStr
    lon: StrictStr
    last: StrictStr
    gap_ms: StrictStr
    gaps: StrictStr
    down_at: StrictStr
    waiting_t: StrictStr
    waiting_row: StrictStr


# each packed column's dtype; NaN in `last` (none released yet) and `down_at` (up)
DEVICE_COLUMNS = {
    "source": "<i1",
    "cell": "<i4",
    "lat": "<f8",
    "lon": "<f8",
    "last": "<f8",
    "gap_ms": "<i8",
    "gaps": "<i8",
    "down_at": "<f8",
    "waiting_t": "<f8",
    "waiting_row": "<i4",
}


@with_config(ConfigDict(extra="forbid"))
class DevicesDoc(TypedDict):
    """Version 4: JSON lists."""

    ids: list[StrictStr]
    source: list[StrictInt]
    cell: list[StrictInt]
    lat: list[StrictFloat]
    lon: list[StrictFloat]
    last: list[StrictFloat | None]
    gap_ms: list[StrictInt]
    gaps: list[StrictInt]
    down_at: list[StrictFloat | None]
    waiting: list[tuple[StrictFloat, StrictInt]]


@with_config(ConfigDict(extra="forbid"))
class StateDoc(TypedDict):
    v: Literal[1, 2, 3, 4, 5]
    cells: StrictStr
    max_t: StrictFloat | None
    watermark: StrictFloat | None
    buffer: list[SignalRow]
    seen: list[tuple[StrictFloat, StrictStr]]
    masks: list[Mask]
    masks_removed: list[StrictStr]
    tracker: TrackerDoc
    stats: StatsState
    devices: NotRequired[PackedDevicesDoc | DevicesDoc]  # version 4 on (lists), 5 (packed)


_STATE: TypeAdapter[StateDoc] = TypeAdapter(StateDoc)


# -- the decoded state ------------------------------------------------------------------------
@dataclass(slots=True)
class EngineState:
    cells: str  # cells_key(grid.cells)
    max_t: float
    watermark: float
    buffer: list[Signal]
    seen: list[tuple[float, str]]  # admission order
    masks: list[Mask]  # set at run time, in engine order
    masks_removed: list[str]
    tracker: TrackerState
    stats: StatsState
    devices: HealthState


def cells_key(cells: Sequence[Cell]) -> str:
    """A fingerprint of the cell ids in order: a snapshot only fits a grid with the same one."""
    ids = "\n".join(c.id for c in cells).encode()
    return f"{len(cells)}-" + hashlib.blake2b(ids, digest_size=8).hexdigest()


# -- encode -----------------------------------------------------------------------------------
def encode(state: EngineState) -> bytes:
    """The state as compact, deterministic JSON bytes: the same state gives the same bytes."""
    t = state.tracker
    doc = {
        "v": VERSION,
        "cells": state.cells,
        "max_t": _time(state.max_t),
        "watermark": _time(state.watermark),
        "buffer": [_row(s) for s in sorted(state.buffer, key=lambda s: (s.t, s.id))],
        "seen": state.seen,
        "masks": [m.model_dump(mode="json", exclude_none=True) for m in state.masks],
        "masks_removed": sorted(state.masks_removed),
        "tracker": {
            "open": [_incident(i) for i in sorted(t.open, key=lambda i: i.id)],
            "max_pixel": t.max_pixel,
            "pending": [_row(s) for s in t.pending],
            "suspects_expired": t.suspects_expired,
            "sights": [(_row(s), iid, reach) for s, iid, reach in t.sights],
        },
        "stats": _stats(state.stats),
    }
    if state.devices.ids:  # none known (health off, or nothing heard yet): nothing to say
        doc["devices"] = packed_devices(state.devices)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def packed_devices(devices: HealthState) -> dict[str, Any]:
    """Device columns as base64 of packed arrays: at province scale (a reading a minute) a
    region has tens of thousands of devices and ten times as many records waiting for the
    watermark, which as JSON lists took most of a snapshot's time and a restore's (parsing and
    validating the numbers one by one; benchmarks/README.md, Scale)."""
    doc: dict[str, Any] = {"ids": devices.ids}
    for name, dtype in DEVICE_COLUMNS.items():
        column = np.ascontiguousarray(getattr(devices, name), dtype=dtype)
        doc[name] = base64.b64encode(column.data).decode("ascii")
    return doc


def _time(t: float) -> float | None:
    return None if t == -math.inf else t


def _row(s: Signal) -> tuple[Any, ...]:
    return (
        s.id,
        s.t,
        s.lat,
        s.lon,
        s.source.value,
        s.device,
        int(s.strength),
        s.cell,
        s.frp,
        s.pixel_km,
        s.flame,
        None if s.sight is None else (s.sight.camera_lat, s.sight.camera_lon, s.sight.bearing_deg),
        s.located_by.value,
        s.uncertainty_m,
    )


def _incident(inc: Incident) -> dict[str, Any]:
    p = inc.place
    return {
        "id": inc.id,
        "anchor": _row(inc.anchor),
        "rule": inc.rule,
        "first_seen": inc.first_seen,
        "last_seen": inc.last_seen,
        "counts": {s.value: n for s, n in inc.counts.items()},
        "detections": inc.detections,
        "max_frp": inc.max_frp,
        "flame": inc.flame,
        "evidence": inc.evidence,
        "severity": inc.severity.value,
        "seq": inc.seq,
        "recent": [(p.t, p.lat, p.lon, p.pixel_km, p.cell) for p in inc.recent],
        "extent": inc.extent,
        "teams": inc.teams,
        "place": (p.lat, p.lon, p.cell, p.located_by.value, p.uncertainty_m),
    }


def _stats(stats: StatsState) -> dict[str, Any]:
    def counts(counter: dict[str, int]) -> dict[str, int]:
        return {str(k): v for k, v in counter.items()}  # StrEnum keys as their values

    return {
        "records": stats["records"],
        "late": stats["late"],
        "rejected": counts(stats["rejected"]),
        "outcomes": counts(stats["outcomes"]),
        "suppressed_by": counts(stats["suppressed_by"]),
        "events": counts(stats["events"]),
    }


# -- decode -----------------------------------------------------------------------------------
def decode(data: bytes, cells: Sequence[Cell]) -> EngineState:
    """Snapshot bytes to a state for an engine on `cells`; StateError says what is wrong."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"engine state is not JSON (truncated or not a snapshot?): {exc}") from exc
    if not isinstance(doc, dict) or "v" not in doc:
        raise StateError("engine state has no format version `v`: not an engine snapshot")
    version = doc["v"]
    if type(version) is not int or version not in READABLE:
        raise StateError(
            f"engine state format version {version!r} is unknown: this firewatch reads "
            f"versions {', '.join(map(str, READABLE))} (a snapshot from a newer firewatch?)"
        )
    if version < 3:
        _as_version_3(doc)
    try:
        wire = _STATE.validate_python(doc)
    except ValidationError as exc:
        raise StateError(f"engine state (version {version}) is corrupt: {_problems(exc)}") from exc
    expected = cells_key(cells)
    if wire["cells"] != expected:
        raise StateError(
            f"engine state was taken on another grid (cells {wire['cells']}, this grid's are "
            f"{expected}): its signals name cells by index, so it cannot be restored here"
        )
    return _state(wire, cells)


def _as_version_3(doc: dict[str, Any]) -> None:
    """Give the signal rows of an earlier version what a version 3 row adds (no sight, placed
    where the record said), in place; what is malformed is left for validation to name."""

    def rows(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    found = doc.get("tracker")
    tracker: dict[str, Any] = found if isinstance(found, dict) else {}
    signals = [*rows(doc.get("buffer")), *rows(tracker.get("pending"))]
    signals += [i.get("anchor") for i in rows(tracker.get("open")) if isinstance(i, dict)]
    for row in signals:
        if isinstance(row, list) and len(row) == 11:
            row += _PLACED_AS_RECORDED


def _problems(exc: ValidationError, most: int = 3) -> str:
    errors = exc.errors()
    text = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in errors[:most]
    )
    return text + (f" (and {len(errors) - most} more)" if len(errors) > most else "")


def _state(wire: StateDoc, cells: Sequence[Cell]) -> EngineState:
    n_cells = len(cells)

    def signal(row: SignalRow, where: str) -> Signal:
        sight = row[11]
        s = Signal(*row[:11], None if sight is None else Sight(*sight), row[12], row[13])
        if not 0 <= s.cell < n_cells:
            raise StateError(f"engine state is corrupt: {where}: cell {s.cell} is not in the grid")
        return s

    def cell(index: int, where: str) -> int:
        if not 0 <= index < n_cells:
            raise StateError(f"engine state is corrupt: {where}: cell {index} is not in the grid")
        return index

    t = wire["tracker"]
    incidents = []
    for d in t["open"]:
        where = f"incident {d['id']}"
        anchor = signal(d["anchor"], where)
        recent = [Point(*r) for r in d.get("recent", [])]
        if any(not 0 <= p.cell < n_cells for p in recent):
            raise StateError(f"engine state is corrupt: {where}.recent: a cell not in the grid")
        if "place" in d:
            lat, lon, index, by, uncertainty = d["place"]
            place = Place(lat, lon, cell(index, f"{where}.place"), by, uncertainty)
        else:
            place = Place.of(anchor)
        incidents.append(_decoded_incident(d, anchor, recent, place, cells[anchor.cell].team))
    if len({i.id for i in incidents}) != len(incidents):
        raise StateError("engine state is corrupt: tracker.open lists an incident twice")
    return EngineState(
        cells=wire["cells"],
        max_t=-math.inf if wire["max_t"] is None else wire["max_t"],
        watermark=-math.inf if wire["watermark"] is None else wire["watermark"],
        buffer=[signal(r, f"buffer.{i}") for i, r in enumerate(wire["buffer"])],
        seen=wire["seen"],
        masks=wire["masks"],
        masks_removed=wire["masks_removed"],
        tracker=TrackerState(
            open=incidents,
            max_pixel=t["max_pixel"],
            pending=[signal(r, f"tracker.pending.{i}") for i, r in enumerate(t["pending"])],
            suspects_expired=t["suspects_expired"],
            sights=[
                (signal(r, f"tracker.sights.{i}"), iid, reach)
                for i, (r, iid, reach) in enumerate(t.get("sights", []))
            ],
        ),
        stats=wire["stats"],
        devices=_devices(wire.get("devices"), n_cells),
    )


def _devices(doc: PackedDevicesDoc | DevicesDoc | None, n_cells: int) -> HealthState:
    if doc is None:
        return HealthState()
    n = len(doc["ids"])
    packed = isinstance(doc["source"], str)
    columns = _unpacked(doc) if packed else _listed(doc)  # type: ignore[arg-type]
    short = [c for c in DEVICE_COLUMNS if not c.startswith("waiting") and len(columns[c]) != n]
    if short:
        raise StateError(f"engine state is corrupt: devices.{short[0]} has not {n} entries")
    if len(columns["waiting_t"]) != len(columns["waiting_row"]):
        raise StateError("engine state is corrupt: devices.waiting: times and rows differ in count")
    if not np.isin(columns["source"], _SOURCE_CODES).all():
        raise StateError("engine state is corrupt: devices.source: an unknown source code")
    if ((columns["cell"] < 0) | (columns["cell"] >= n_cells)).any():
        raise StateError("engine state is corrupt: devices.cell: a cell not in the grid")
    if len(set(doc["ids"])) != n:
        raise StateError("engine state is corrupt: devices.ids lists a device twice")
    if ((columns["waiting_row"] < 0) | (columns["waiting_row"] >= n)).any():
        raise StateError("engine state is corrupt: devices.waiting: a row not in devices")
    for name in ("lat", "lon", "waiting_t"):
        if not np.isfinite(columns[name]).all():
            raise StateError(f"engine state is corrupt: devices.{name}: not a finite number")
    for name in ("last", "down_at"):
        if np.isinf(columns[name]).any():
            raise StateError(f"engine state is corrupt: devices.{name}: not a finite number")
    for name in ("gap_ms", "gaps"):
        if (columns[name] < 0).any():
            raise StateError(f"engine state is corrupt: devices.{name}: a negative count")
    return HealthState(ids=doc["ids"], **columns)


def _unpacked(doc: PackedDevicesDoc) -> dict[str, np.ndarray]:
    """Version 5's columns, as arrays of their dtype in this machine's byte order."""
    columns = {}
    for name, dtype in DEVICE_COLUMNS.items():
        try:
            raw = base64.b64decode(doc[name], validate=True)  # type: ignore[literal-required]
        except binascii.Error as exc:
            raise StateError(f"engine state is corrupt: devices.{name}: {exc}") from None
        size = np.dtype(dtype).itemsize
        if len(raw) % size:
            raise StateError(
                f"engine state is corrupt: devices.{name}: {len(raw)} bytes, not a whole "
                f"number of {size}-byte values"
            )
        columns[name] = np.frombuffer(raw, dtype).astype(np.dtype(dtype).newbyteorder("="))
    return columns


def _listed(doc: DevicesDoc) -> dict[str, np.ndarray]:
    """Version 4's JSON lists as version 5's arrays (null: NaN)."""
    waiting = doc["waiting"]
    lists: dict[str, list[Any]] = {
        name: [math.nan if x is None else x for x in doc[name]]  # type: ignore[literal-required]
        for name in DEVICE_COLUMNS
        if not name.startswith("waiting")
    }
    lists["waiting_t"] = [t for t, _ in waiting]
    lists["waiting_row"] = [r for _, r in waiting]
    columns = {}
    for name, values in lists.items():
        try:
            columns[name] = np.array(values, np.dtype(DEVICE_COLUMNS[name]).newbyteorder("="))
        except OverflowError as exc:  # a number too large for the column
            raise StateError(f"engine state is corrupt: devices.{name}: {exc}") from None
    return columns


_SOURCE_CODES = sorted(SOURCE_CODE.values())


def _decoded_incident(
    d: IncidentDoc, anchor: Signal, recent: list[Point], place: Place, team: str | None
) -> Incident:
    """An incident of the snapshot; one of version 1 follows the fire from its first detection."""
    if "recent" not in d:
        recent = [Point.of(anchor)]
    return Incident(
        id=d["id"],
        anchor=anchor,
        rule=d["rule"],
        first_seen=d["first_seen"],
        last_seen=d["last_seen"],
        counts={s: d["counts"].get(s, 0) for s in SOURCES},  # in SOURCES order, as events list them
        place=place,
        detections=d["detections"],
        max_frp=d["max_frp"],
        flame=d["flame"],
        evidence=d["evidence"],
        severity=d["severity"],
        seq=d["seq"],
        recent=deque(recent),
        extent=list(d.get("extent", (anchor.lon, anchor.lat, anchor.lon, anchor.lat))),
        teams=d.get("teams", [team] if team else []),
    )


# -- masks: the run-time change to the rule masks ---------------------------------------------
def mask_delta(current: Sequence[Mask], rules: Sequence[Mask]) -> tuple[list[Mask], list[str]]:
    """The engine's masks as (masks set at run time, names of rule masks not in their place).

    The engine applies masks in order (a detection inside two is credited to the first), and
    `masks_from_delta` rebuilds that order exactly: the rule masks still in their places (the
    longest prefix of `current` in rule order), each replaced in place where the engine holds
    another version, then the masks added later, in order. A rule mask removed and added again
    is among the latter, so it is also listed as removed from its place.
    """
    position = {m.name: i for i, m in enumerate(rules)}
    by_name = {m.name: m for m in rules}
    runtime: list[Mask] = []
    in_place: set[str] = set()
    last, appended = -1, False
    for m in current:
        i = position.get(m.name)
        if not appended and i is not None and i > last:
            last = i
            in_place.add(m.name)
            if m != by_name[m.name]:
                runtime.append(m)
        else:
            appended = True
            runtime.append(m)
    return runtime, sorted(set(position) - in_place)


def masks_from_delta(
    rules: Sequence[Mask], runtime: Sequence[Mask], removed: Sequence[str]
) -> list[Mask]:
    """The masks an engine with these rule masks applies after a restore (see mask_delta)."""
    gone = set(removed)
    masks = {m.name: m for m in rules if m.name not in gone}
    for m in runtime:
        masks[m.name] = m
    return list(masks.values())
