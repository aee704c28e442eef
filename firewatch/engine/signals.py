"""Rules, per batch: which located detections are a fire signal, which are suppressed.

Vectorised over the batch with numpy; the only per-record work is reading the validated dicts
into columns (C-level passes: map, itemgetter) and building a `Signal` for the few records that
are fire signals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Point, Polygon, shape

from firewatch.geo.sight import Sight
from firewatch.ingest.epoch import epoch_seconds
from firewatch.model import AnyDetection, LocatedBy, Source
from firewatch.rules.model import Mask, RuleSet

SOURCE_CODE = {Source.SENSOR: 0, Source.CAMERA: 1, Source.SATELLITE: 2}
_KM_PER_DEG_LAT = 110.574
_LAT, _LON, _SOURCE = (itemgetter(k) for k in ("lat", "lon", "source"))
_CONFIDENCE, _READINGS = itemgetter("confidence"), itemgetter("readings")


class Strength(IntEnum):
    SUSPECT = 1  # needs corroboration
    STRONG = 2  # opens an incident alone


@dataclass(slots=True)
class Signal:
    """A detection that is a fire signal: what the incident tracker works on."""

    id: str
    t: float  # event time, epoch seconds
    lat: float
    lon: float
    source: Source
    device: str
    strength: Strength
    cell: int  # grid cell index
    frp: float  # MW, 0 when unknown
    pixel_km: float  # satellite pixel size (max of scan, track); 0 for other sources
    flame: bool
    sight: Sight | None = None  # a camera's line of sight: where it stands, the smoke's bearing
    # where the tracker placed it (engine/sights.py): lat, lon and cell above are that place
    located_by: LocatedBy = LocatedBy.DETECTION
    uncertainty_m: float | None = None


@dataclass(frozen=True)
class CompiledMask:
    mask: Mask
    geom: object  # shapely geometry, prepared
    start: float  # epoch seconds, -inf when open
    end: float  # epoch seconds, +inf when open
    sources: frozenset[str]

    @classmethod
    def compile(cls, mask: Mask) -> CompiledMask:
        if mask.circle is not None:
            c = mask.circle
            km_lon = 111.320 * max(np.cos(np.radians(c.lat)), 1e-6)
            unit = Point(0.0, 0.0).buffer(1.0, quad_segs=32)
            geom = shapely.affinity.scale(
                unit, c.radius_m / 1000 / km_lon, c.radius_m / 1000 / _KM_PER_DEG_LAT, origin=(0, 0)
            )
            geom = shapely.affinity.translate(geom, c.lon, c.lat)
        elif mask.polygon is not None:
            geom = Polygon(mask.polygon)
        else:
            geom = shape(mask.geometry)
        geom = shapely.make_valid(geom)
        shapely.prepare(geom)
        return cls(
            mask=mask,
            geom=geom,
            start=mask.start.timestamp() if mask.start else -np.inf,
            end=mask.end.timestamp() if mask.end else np.inf,
            sources=frozenset(mask.sources or list(Source)),
        )


@dataclass
class Columns:
    """The batch as numpy columns."""

    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    source: np.ndarray  # int8 codes, see SOURCE_CODE

    @classmethod
    def of(cls, batch: list[AnyDetection], t: np.ndarray | None = None) -> Columns:
        """The columns of validated detections; `t`, their event times, when validation
        computed them already (ingest/validate.py Checked.t)."""
        # one C-level pass per column (map and itemgetter: no Python frame per record); the
        # event time in numpy from the datetimes' fields (ingest/epoch.py)
        n = len(batch)
        if t is not None and len(t) != n:
            raise ValueError(f"{len(t)} event times for {n} detections")
        return cls(
            t=epoch_seconds(batch) if t is None else t,
            lat=np.fromiter(map(_LAT, batch), np.float64, n),
            lon=np.fromiter(map(_LON, batch), np.float64, n),
            source=np.fromiter(map(SOURCE_CODE.__getitem__, map(_SOURCE, batch)), np.int8, n),
        )


def suppressed(
    static: np.ndarray,
    cols: Columns,
    masks: list[CompiledMask],
    rules: RuleSet,
    candidates: np.ndarray,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which candidates (located fire signals) are suppressed, and how many per mask name
    (`static`: a satellite pixel flagged static, FIRMS type 2). A normal sensor reading inside a
    mask is no fire signal: it is not counted as suppressed."""
    out = np.zeros(len(static), dtype=bool)
    counts: dict[str, int] = {}
    if rules.sources.satellite.suppress_static:
        flagged = np.flatnonzero(candidates & static)
        out[flagged] = True
        if flagged.size:
            counts["static"] = int(flagged.size)
    for cm in masks:
        codes = [SOURCE_CODE[Source(s)] for s in cm.sources]
        hit = (
            candidates
            & ~out
            & np.isin(cols.source, codes)
            & (cols.t >= cm.start)
            & (cols.t < cm.end)
        )
        idx = np.flatnonzero(hit)
        if idx.size:
            inside = idx[shapely.contains_xy(cm.geom, cols.lon[idx], cols.lat[idx])]
            out[inside] = True
            if inside.size:
                counts[cm.mask.name] = int(inside.size)
    return out, counts


def strengths(batch: list[AnyDetection], cols: Columns, rules: RuleSet) -> np.ndarray:
    """Per record: 0 (no fire signal), Strength.SUSPECT or Strength.STRONG."""
    out = np.zeros(len(batch), dtype=np.int8)
    cam = cols.source == SOURCE_CODE[Source.CAMERA]
    sat = cols.source == SOURCE_CODE[Source.SATELLITE]
    rated = np.flatnonzero(cam | sat)  # a camera's and a satellite's confidence is required
    conf = np.zeros(len(batch), dtype=np.float64)
    conf[rated] = np.fromiter(map(_CONFIDENCE, _rows(batch, rated)), np.float64, len(rated))
    cr = rules.sources.camera
    out[cam & (conf >= cr.suspect_confidence)] = Strength.SUSPECT
    out[cam & (conf >= cr.open_confidence)] = Strength.STRONG
    out[sat] = Strength.SUSPECT
    out[sat & (conf >= rules.sources.satellite.open_confidence)] = Strength.STRONG
    sensors = np.flatnonzero(cols.source == SOURCE_CODE[Source.SENSOR])
    readings = list(map(_READINGS, _rows(batch, sensors)))
    over = np.zeros(len(sensors), dtype=bool)
    for name, threshold in rules.sources.sensor.thresholds.items():
        # dict.get(readings, name, -inf) for each sensor, without a Python frame per record
        value = np.fromiter(map(dict.get, readings, repeat(name), repeat(-np.inf)), np.float64)
        over |= value >= threshold
    out[sensors[over]] = Strength.SUSPECT
    return out


def _rows(batch: list[AnyDetection], rows: np.ndarray) -> Iterator[AnyDetection]:
    return map(batch.__getitem__, rows.tolist())


def make_signal(d: AnyDetection, det_id: str, t: float, strength: int, cell: int) -> Signal:
    rec: Mapping[str, Any] = d  # the optional fields of the three kinds, read alike
    pixel = 0.0
    sight = None
    if rec["source"] == Source.SATELLITE:
        pixel = float(max(rec.get("scan_km") or 0.0, rec.get("track_km") or 0.0))
    elif rec["source"] == Source.CAMERA:
        lat, lon, bearing = rec.get("camera_lat"), rec.get("camera_lon"), rec.get("bearing_deg")
        if lat is not None and lon is not None and bearing is not None:
            sight = Sight(lat, lon, bearing)
    return Signal(
        id=det_id,
        t=t,
        lat=d["lat"],
        lon=d["lon"],
        source=Source(d["source"]),
        device=d["device_id"],
        strength=Strength(strength),
        cell=cell,
        frp=float(rec.get("frp_mw") or 0.0),
        pixel_km=pixel,
        flame=rec.get("label") == "flame",
        sight=sight,
    )
