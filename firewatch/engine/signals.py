"""Rules, per batch: which located detections are a fire signal, which are suppressed.

Vectorised over the batch with numpy; the only per-record Python work is reading the validated
dicts into columns and building a `Signal` for the few records that are fire signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Point, Polygon, shape

from firewatch.model import AnyDetection, Source
from firewatch.rules.model import Mask, RuleSet

SOURCE_CODE = {Source.SENSOR: 0, Source.CAMERA: 1, Source.SATELLITE: 2}
_KM_PER_DEG_LAT = 110.574


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
    def of(cls, batch: list[AnyDetection]) -> Columns:
        n = len(batch)
        return cls(
            t=np.fromiter((d["observed_at"].timestamp() for d in batch), np.float64, n),
            lat=np.fromiter((d["lat"] for d in batch), np.float64, n),
            lon=np.fromiter((d["lon"] for d in batch), np.float64, n),
            source=np.fromiter((SOURCE_CODE[d["source"]] for d in batch), np.int8, n),  # type: ignore[index]
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
    n = len(batch)
    out = np.zeros(n, dtype=np.int8)
    conf = np.fromiter((d.get("confidence") or 0.0 for d in batch), np.float64, n)
    cam = cols.source == SOURCE_CODE[Source.CAMERA]
    cr = rules.sources.camera
    out[cam & (conf >= cr.suspect_confidence)] = Strength.SUSPECT
    out[cam & (conf >= cr.open_confidence)] = Strength.STRONG
    sat = cols.source == SOURCE_CODE[Source.SATELLITE]
    out[sat] = Strength.SUSPECT
    out[sat & (conf >= rules.sources.satellite.open_confidence)] = Strength.STRONG
    thresholds = list(rules.sources.sensor.thresholds.items())
    for i in np.flatnonzero(cols.source == SOURCE_CODE[Source.SENSOR]):
        readings = batch[i]["readings"]  # type: ignore[typeddict-item]
        if any(readings.get(k, -np.inf) >= v for k, v in thresholds):
            out[i] = Strength.SUSPECT
    return out


def make_signal(d: AnyDetection, det_id: str, t: float, strength: int, cell: int) -> Signal:
    rec: Mapping[str, Any] = d  # the optional fields of the three kinds, read alike
    pixel = 0.0
    if rec["source"] == Source.SATELLITE:
        pixel = float(max(rec.get("scan_km") or 0.0, rec.get("track_km") or 0.0))
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
    )
