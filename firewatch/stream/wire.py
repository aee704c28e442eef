"""The located topic's messages: one region's part of a prepared batch (engine/located.py), in
columns, so that the incidents stage parses no JSON and does no geometry.

Version 3, little-endian:

    b"\\x02"  n: u32  signals: u32  grid: u16 length + UTF-8 (the cells key of the grid the
                                   cell indexes refer to: another grid locates them again)
    t: f64[n]  lat: f64[n]  lon: f64[n]  source: i8[n]  cell: i32[n]  strength: i8[n]  static: u8[n]
    per signal: row: u32  frp: f64  pixel_km: f64  flame: u8  has_sight: u8
                [camera_lat: f64  camera_lon: f64  bearing_deg: f64, when has_sight is 1]
                id: u16 length + UTF-8  device: u16 length + UTF-8
    devices: u32, then each: u16 length + UTF-8 (the distinct device ids, first seen first)
    device: u32[n] (each row's, an index into them)
    stations: u32, then each: row: u32  camera_lat: f64  camera_lon: f64 (cameras that say
                where they stand: device health, engine/health.py)

The first byte is the format's version. Version 2 is the same without the device ids and stations
(before device health: its rows are of no known device, and health does not see them); version 1
also without has_sight and the sight (before cameras were placed by their sights); a message that
starts with `{` is the format before columns (valid JSON lines, newline-joined). A worker of this
version reads them all, so that a rolling upgrade loses nothing left on the topic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from firewatch.engine.located import Located
from firewatch.engine.signals import SOURCE_CODE, Columns, Signal, Strength
from firewatch.geo.sight import Sight

VERSION = 3
READABLE = (1, 2, 3)
_HEAD = struct.Struct("<BII")
_SIGNAL = struct.Struct("<IddB")  # version 1
_SIGNAL_SIGHT = struct.Struct("<IddBB")  # version 2: and whether a sight follows
_SIGHT = struct.Struct("<ddd")
_COUNT = struct.Struct("<I")
_STATION = struct.Struct("<Idd")
_LEN = struct.Struct("<H")
_COLUMNS = (  # name, dtype, in the order they are written
    ("t", np.dtype("<f8")),
    ("lat", np.dtype("<f8")),
    ("lon", np.dtype("<f8")),
    ("source", np.dtype("i1")),
    ("cell", np.dtype("<i4")),
    ("strength", np.dtype("i1")),
    ("static", np.dtype("u1")),
)
ROW_BYTES = sum(dtype.itemsize for _, dtype in _COLUMNS) + 4  # and its device index
SOURCES = {code: source for source, code in SOURCE_CODE.items()}
_FIRST_BYTES = frozenset(bytes([v]) for v in READABLE)


class WireError(ValueError):
    """A located message this version cannot read."""


def is_columns(value: bytes) -> bool:
    """A message in this module's format (else: the earlier JSON lines, or garbage)."""
    return value[:1] in _FIRST_BYTES


def encode(batch: Located) -> bytes:
    cols = batch.cols
    arrays = {
        "t": cols.t,
        "lat": cols.lat,
        "lon": cols.lon,
        "source": cols.source,
        "cell": batch.cell,
        "strength": batch.strength,
        "static": batch.static,
    }
    grid = batch.grid.encode()
    parts = [_HEAD.pack(VERSION, len(batch), len(batch.signals)), _LEN.pack(len(grid)), grid]
    parts += [np.ascontiguousarray(arrays[name], dtype).tobytes() for name, dtype in _COLUMNS]
    for row, s in sorted(batch.signals.items()):
        sight = s.sight
        parts.append(_SIGNAL_SIGHT.pack(row, s.frp, s.pixel_km, s.flame, sight is not None))
        if sight is not None:
            parts.append(_SIGHT.pack(sight.camera_lat, sight.camera_lon, sight.bearing_deg))
        for text in (s.id, s.device):
            raw = text.encode()
            parts += [_LEN.pack(len(raw)), raw]
    ids, index = np.unique(batch.device.astype(str), return_inverse=True)
    parts.append(_COUNT.pack(len(ids)))
    for text in ids.tolist():
        raw = text.encode()
        parts += [_LEN.pack(len(raw)), raw]
    parts.append(index.astype("<u4").tobytes())
    parts.append(_COUNT.pack(len(batch.stations)))
    parts += [_STATION.pack(row, *at) for row, at in sorted(batch.stations.items())]
    return b"".join(parts)


def decode(value: bytes) -> Located:
    """A message `encode` wrote; WireError naming what is wrong when it is not one."""
    try:
        return _decode(memoryview(value))
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise WireError(f"located message of {len(value)} bytes not readable: {exc}") from None


def _decode(view: memoryview) -> Located:
    version, n, count = _HEAD.unpack_from(view)
    if version not in READABLE:
        raise WireError(
            f"located message format {version}, this worker reads {', '.join(map(str, READABLE))}"
        )
    at = _HEAD.size
    grid, at = _text(view, at)
    arrays: dict[str, np.ndarray] = {}
    for name, dtype in _COLUMNS:
        size = n * dtype.itemsize
        if at + size > len(view):
            raise ValueError(f"column {name} cut short")
        arrays[name] = np.frombuffer(view, dtype, n, at)
        at += size
    cols = Columns(
        t=arrays["t"].astype(np.float64),
        lat=arrays["lat"].astype(np.float64),
        lon=arrays["lon"].astype(np.float64),
        source=arrays["source"].astype(np.int8),
    )
    cell = arrays["cell"].astype(np.int64)
    strength = arrays["strength"].astype(np.int8)
    signals: dict[int, Signal] = {}
    for _ in range(count):
        sight = None
        if version == 1:
            row, frp, pixel, flame = _SIGNAL.unpack_from(view, at)
            at += _SIGNAL.size
        else:
            row, frp, pixel, flame, has_sight = _SIGNAL_SIGHT.unpack_from(view, at)
            at += _SIGNAL_SIGHT.size
            if has_sight:
                sight = Sight(*_SIGHT.unpack_from(view, at))
                at += _SIGHT.size
        texts = []
        for _ in range(2):
            text, at = _text(view, at)
            texts.append(text)
        if not 0 <= row < n or strength[row] <= 0 or cell[row] < 0:
            raise ValueError(f"signal row {row} is not a fire signal of the {n} rows")
        signals[row] = Signal(
            id=texts[0],
            t=float(cols.t[row]),
            lat=float(cols.lat[row]),
            lon=float(cols.lon[row]),
            source=SOURCES[int(cols.source[row])],
            device=texts[1],
            strength=Strength(int(strength[row])),
            cell=int(cell[row]),
            frp=frp,
            pixel_km=pixel,
            flame=bool(flame),
            sight=sight,
        )
    device = np.full(n, "", object)  # version 1 and 2: no device known
    stations: dict[int, tuple[float, float]] = {}
    if version >= 3:
        device, stations, at = _devices(view, at, n)
    if at != len(view):
        raise ValueError(f"{len(view) - at} bytes left over")
    if len(signals) != int(np.count_nonzero(strength)):
        raise ValueError("a fire signal row without its signal")
    static = arrays["static"].astype(bool)
    return Located(cols, cell, strength, static, signals, grid, device, stations)


def _devices(
    view: memoryview, at: int, n: int
) -> tuple[np.ndarray, dict[int, tuple[float, float]], int]:
    (count,) = _COUNT.unpack_from(view, at)
    at += _COUNT.size
    ids = []
    for _ in range(count):
        text, at = _text(view, at)
        ids.append(text)
    size = 4 * n
    if at + size > len(view):
        raise ValueError("device column cut short")
    index = np.frombuffer(view, "<u4", n, at).astype(np.int64)
    at += size
    if n and (not count or int(index.max()) >= count):
        raise ValueError(f"a row's device is not one of the {count} listed")
    device = np.array(ids, object)[index] if n else np.empty(0, object)
    (count,) = _COUNT.unpack_from(view, at)
    at += _COUNT.size
    stations = {}
    for _ in range(count):
        row, lat, lon = _STATION.unpack_from(view, at)
        at += _STATION.size
        if not 0 <= row < n:
            raise ValueError(f"station row {row} is not one of the {n} rows")
        stations[row] = (lat, lon)
    return device, stations, at


def _text(view: memoryview, at: int) -> tuple[str, int]:
    """A length-prefixed UTF-8 string at `at`, and where what follows it starts."""
    (length,) = _LEN.unpack_from(view, at)
    at += _LEN.size
    if at + length > len(view):
        raise ValueError("text cut short")
    return bytes(view[at : at + length]).decode(), at + length


def messages(batch: Located, limit: int) -> Iterator[bytes]:
    """`batch` in messages of at most about `limit` bytes (whole rows; a signal's strings are
    counted as they come)."""
    rows_per_message = max(1, limit // (ROW_BYTES + 64))
    n = len(batch)
    if n <= rows_per_message:
        yield encode(batch)
        return
    for start in range(0, n, rows_per_message):
        yield encode(batch.take(np.arange(start, min(n, start + rows_per_message))))
