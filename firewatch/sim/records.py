"""The camera and satellite records: kept in columns as they come, written many at a time.

A camera's reports are most of these records (about 16,000 in the demo season). They are kept
as columns (device, time, position in km, confidence, label) and turned into JSON lines all at
once: positions into degrees and the cameras' bearings as arrays, and the lines assembled from
tables of text pieces (columns.py). The numbers' texts are those orjson gives them (a column's
values go through one orjson.dumps), rounded as round() rounds them, so the lines are the same
bytes as orjson.dumps of each record as a dict, which is how the few satellite records are
written.

Record ids are "<device_id>:<epoch seconds>"; no device reports twice in one second (a record
is moved on by a second if it would).

A camera record says where the camera stands and the bearing of the smoke it saw (the bearing to
where the smoke really is, with a normal error of BEARING_ERROR_DEG, from a generator of its own
so that the rest of the stream keeps its draws), and a position: the vendor's estimate of the
fire's, except from every third tower (OWN_POSITION_EVERY), older ones that send only where they
stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from firewatch.sim.columns import Column, integers, text
from firewatch.sim.scenario import Pass
from firewatch.sim.timefmt import Stamps
from firewatch.sim.world import BoolArray, FloatArray, IntArray, World

BEARING_ERROR_DEG = 1.0  # 1-sigma error of a camera's bearing to the smoke
OWN_POSITION_EVERY = 3  # towers 2, 5, 8, ... send their own position as the record's lat/lon


@dataclass
class Recorder:
    """Collects the camera and satellite records, with unique ids, in the order they come."""

    world: World
    stamps: Stamps
    end_s: int
    bearings: np.random.Generator  # the cameras' bearing errors
    times: list[int] = field(default_factory=list)  # of each record
    camera_times: dict[int, list[int]] = field(default_factory=dict)
    _devices: list[str] = field(default_factory=list)
    _x: list[float] = field(default_factory=list)  # km
    _y: list[float] = field(default_factory=list)
    _aim_x: list[float] = field(default_factory=list)  # km: where a camera's smoke really is
    _aim_y: list[float] = field(default_factory=list)
    _camera: list[int] = field(default_factory=list)  # the camera of each record, -1: satellite
    _confidence: list[float] = field(default_factory=list)  # camera records', not yet rounded
    _labels: list[str] = field(default_factory=list)  # camera records'
    _status: list[bool] = field(default_factory=list)  # camera records': a clear-view status
    _satellite: dict[int, dict[str, Any]] = field(default_factory=dict)  # record -> its fields
    _used: dict[str, set[int]] = field(default_factory=dict)  # device -> seconds with a record

    def camera(
        self,
        cam: int,
        t: int,
        x: float,
        y: float,
        conf: float,
        label: str,
        aim: tuple[float, float] | None = None,
    ) -> bool:
        at = None if aim is None else ([aim[0]], [aim[1]])
        return self.cameras(cam, [t], [x], [y], [conf], [label], at) == 1

    def cameras(
        self,
        cam: int,
        times: list[int],
        x: list[float],
        y: list[float],
        conf: list[float] | FloatArray,
        labels: list[str],
        aim: tuple[list[float], list[float]] | None = None,
        status: bool = False,
    ) -> int:
        """Reports of one camera, in order, at estimated positions (x, y) of smoke that is at
        `aim` (default: where estimated); those from the end of the window on are left out.
        How many were recorded. A `status` report (a clear view: outages.heartbeats) has no
        bearing."""
        name = self.world.cameras.names[cam]
        ax, ay = (x, y) if aim is None else aim
        if max(times, default=self.end_s) >= self.end_s:
            at = [i for i, t in enumerate(times) if t < self.end_s]
            times, x, y = [times[i] for i in at], [x[i] for i in at], [y[i] for i in at]
            ax, ay = [ax[i] for i in at], [ay[i] for i in at]
            conf, labels = [conf[i] for i in at], [labels[i] for i in at]
        times = self._claim(name, times)
        n = len(times)
        self.camera_times.setdefault(cam, []).extend(times)
        self.times += times
        self._devices += [name] * n
        self._x += x
        self._y += y
        self._aim_x += ax
        self._aim_y += ay
        self._camera += [cam] * n
        self._confidence += conf if isinstance(conf, list) else conf.tolist()
        self._labels += labels
        self._status += [status] * n
        return n

    def _claim(self, device: str, times: list[int]) -> list[int]:
        """The seconds of the device's records at these times, each moved on by a second while
        the device has a record then (nearly always none has)."""
        used = self._used.setdefault(device, set())
        if used.isdisjoint(times) and len(set(times)) == len(times):
            used.update(times)
            return times
        claimed = []
        for t in times:
            while t in used:
                t += 1
            used.add(t)
            claimed.append(t)
        return claimed

    def satellite(self, p: Pass, x: float, y: float, conf: float, frp: float, **pixel: Any) -> None:
        (t,) = self._claim(p.device, [p.t])
        self._satellite[len(self.times)] = {
            "confidence": round(conf, 2),
            "frp_mw": round(frp, 1),
            "scan_km": round(pixel["scan"], 2),
            "track_km": round(pixel["track"], 2),
            "instrument": p.instrument,
            "satellite": p.satellite,
            "static": bool(pixel.get("static", False)),
        }
        self.times.append(t)
        self._devices.append(p.device)
        self._x.append(x)
        self._y.append(y)
        self._aim_x.append(x)
        self._aim_y.append(y)
        self._camera.append(-1)
        self._confidence.append(0.0)
        self._labels.append("")
        self._status.append(False)

    def specials(self) -> Specials:
        """The records so far, in the order they came, ready to be written."""
        camera = np.array(self._camera, dtype=np.int64)
        seen = np.flatnonzero(camera >= 0)
        towers = self.world.cameras.xy[camera[seen]]
        x, y = np.array(self._x, dtype=np.float64), np.array(self._y, dtype=np.float64)
        own = seen[camera[seen] % OWN_POSITION_EVERY == OWN_POSITION_EVERY - 1]
        x[own], y[own] = self.world.cameras.xy[camera[own]].T  # older towers: where they stand
        lon, lat = self.world.grid.to_deg(x, y)
        aim = np.column_stack([self._aim_x, self._aim_y])[seen]
        dx, dy = (aim - towers).T
        error = self.bearings.normal(0.0, BEARING_ERROR_DEG, size=len(seen))
        bearing = (np.degrees(np.arctan2(dx, dy)) + error) % 360.0  # to the smoke, with an error
        labels = self._labels
        return Specials(
            world=self.world,
            stamps=self.stamps,
            times=self.times,
            devices=self._devices,
            sources=["satellite" if c < 0 else "camera" for c in self._camera],
            flames=np.array([i for i in seen.tolist() if labels[i] == "flame"], dtype=np.int64),
            lat=lat,
            lon=lon,
            camera=camera,
            seen=seen,
            confidence=rounded(np.array(self._confidence, dtype=np.float64)[seen], 2),
            labels=[labels[i] for i in seen.tolist()],
            bearing=rounded(bearing, 1),
            status=np.array(self._status, dtype=bool)[seen],
            satellite=self._satellite,
        )


@dataclass(frozen=True)
class Specials:
    """Camera and satellite records, in the order they came; `lines` writes them."""

    world: World
    stamps: Stamps
    times: list[int]
    devices: list[str]
    sources: list[str]
    flames: IntArray  # the flame reports
    lat: FloatArray  # degrees, rounded to 6 decimals
    lon: FloatArray
    camera: IntArray  # -1: a satellite record
    seen: IntArray  # the camera records; then, for each of them:
    confidence: list[float]
    labels: list[str]
    bearing: list[float]
    status: BoolArray  # a clear-view status: no bearing
    satellite: dict[int, dict[str, Any]]  # the satellite records' fields after lon

    def __len__(self) -> int:
        return len(self.times)

    def lines(self, has_id: BoolArray) -> list[str]:
        """Each record as orjson.dumps writes it as a dict ("id" first, where `has_id`; then
        source, device_id, observed_at, lat, lon and the source's fields), without a newline:
        str holding the bytes as latin-1 (columns.py)."""
        lines = [""] * len(self)
        seen = self.seen
        for i, line in zip(seen.tolist(), self._camera_lines(has_id[seen]), strict=True):
            lines[i] = line
        lat, lon = self.lat.tolist(), self.lon.tolist()
        for i, fields in self.satellite.items():
            head = {"id": f"{self.devices[i]}:{self.times[i]}"} if has_id[i] else {}
            record = {
                **head,
                "source": "satellite",
                "device_id": self.devices[i],
                "observed_at": self.stamps.iso(self.times[i]),
                "lat": lat[i],
                "lon": lon[i],
                **fields,
            }
            lines[i] = orjson.dumps(record).decode("latin-1")
        return lines

    def _camera_lines(self, has_id: BoolArray) -> list[str]:
        seen, cameras = self.seen, self.world.cameras
        if not seen.size:
            return []
        cam = self.camera[seen]
        epoch = np.array(self.times, dtype=np.int64)[seen]
        names = [_text(name) for name in cameras.names]  # quoted
        after_id = [f'","source":"camera","device_id":{name},"observed_at":"' for name in names]
        heads = [  # camera c: 2 * c without an id, 2 * c + 1 with one (up to its epoch second)
            head
            for name in names
            for head in (
                f'{{"source":"camera","device_id":{name},"observed_at":"',
                f'{{"id":{name[:-1]}:',
            )
        ]
        own = [  # the camera's own position, then the end of the line
            f',"camera_lat":{_text(la)},"camera_lon":{_text(lo)}}}\n'
            for la, lo in zip(cameras.lat.tolist(), cameras.lon.tolist(), strict=True)
        ]
        with_id = has_id.astype(bool)
        pieces = [
            Column(heads, 2 * cam + with_id),
            *(c.only(with_id) for c in integers(epoch)),
            Column(after_id, np.where(with_id, cam, -1)),
            *self.stamps.columns(epoch),
            _floats(self.lat[seen], '","lat":', ""),
            _floats(self.lon[seen], ',"lon":', ""),
            _floats(np.array(self.confidence), ',"confidence":', ""),
            _words(self.labels, ',"label":', ',"bearing_deg":').only(~self.status),
            _words(self.labels, ',"label":', "").only(self.status),
            _floats(np.array(self.bearing), "", "").only(~self.status),
            Column(own, cam),
        ]
        return text(pieces).split("\n")[:-1]


def rounded(values: FloatArray, places: int) -> list[float]:
    """[round(v, places) for v in values.tolist()], many at once: round() rounds v's exact
    binary value to `places` decimals and returns the float nearest that decimal, which is
    np.rint(v * 10**places) / 10**places wherever the product is not within a hair of a half
    (where its own rounding could tip it): there, and for huge or odd values, round() itself."""
    scale = 10.0**places
    scaled = values * scale
    out: list[float] = (np.rint(scaled) / scale).tolist()
    with np.errstate(invalid="ignore"):
        tipping = ~(np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6) | ~(np.abs(scaled) < 2.0**40)
    for i in np.flatnonzero(tipping).tolist():
        out[i] = round(float(values[i]), places)
    return out


def _text(value: Any) -> str:
    """orjson's JSON text of one value."""
    return orjson.dumps(value).decode()


def _floats(values: FloatArray, before: str, after: str) -> Column:
    """Each float as orjson writes it (one orjson.dumps of them all), between `before` and
    `after`."""
    texts = orjson.dumps(values.tolist()).decode()[1:-1].split(",")
    return Column([before + t + after for t in texts], np.arange(len(texts)))


def _words(values: list[str], before: str, after: str) -> Column:
    distinct = sorted(set(values))
    at = {v: i for i, v in enumerate(distinct)}
    table = [before + _text(v) + after for v in distinct]
    return Column(table, np.array([at[v] for v in values], dtype=np.int64))
