"""Rule models: what the YAML files in rules/ may say. Every number is a default in YAML, not here.

Each top-level key of a rule file is a section (`sources`, `corroboration`, `incidents`, `severity`,
`masks`, `routing`); the files of a rule directory are merged and a section may appear in only one
file.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from firewatch.model import Severity, Source

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?"
    r"\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(value: Any) -> Any:
    """'10m', '24h', '1h30m', '45s', '30d' or a number of seconds -> timedelta."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m', '24h', '1h30m'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
        raise ValueError(f"{value!r} is not a duration like '10m', '24h', '1h30m', '45s', '30d'")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), Field(ge=timedelta(0))]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorRule(_Rule):
    thresholds: Annotated[dict[str, float], Field(min_length=1)]  # reading >= value: over threshold
    repeat_window: (
        Duration  # a second over-threshold reading from the same sensor within this opens
    )


class CameraRule(_Rule):
    open_confidence: Unit  # at or above: opens an incident alone
    suspect_confidence: Unit  # at or above (and below open): a suspect; below: ignored
    repeat_window: Duration  # a second suspect from the same camera within this opens

    @model_validator(mode="after")
    def _ordered(self) -> CameraRule:
        if self.suspect_confidence > self.open_confidence:
            raise ValueError("suspect_confidence must not exceed open_confidence")
        return self


class SatelliteRule(_Rule):
    open_confidence: Unit  # at or above: opens; below: a suspect
    suppress_static: bool  # `static` detections (known static heat sources) are suppressed


class SourceRules(_Rule):
    sensor: SensorRule
    camera: CameraRule
    satellite: SatelliteRule
    # A detection observed more than this after it arrives (by the reader's clock: the worker's,
    # or `replay --now`) is rejected as future_timestamp. Optional (rule sets written before it
    # existed load); rules/detection.yaml states it.
    max_future: Duration = timedelta(minutes=5)


class CorroborationRule(_Rule):
    window: Duration  # a suspect is corroborated by another device's fire signal within this...
    radius_km: Positive  # ...and within this distance


class IncidentRules(_Rule):
    merge_radius_km: Positive  # a detection joins an open incident within this distance of one
    # of the incident's last `track_points` detections (so an incident follows a spreading fire)
    track_points: Annotated[int, Field(ge=1, le=1000)] = 10
    satellite_pixel_factor: Annotated[float, Field(ge=0.0)]  # widen by this x the pixel size (km)
    inactivity: Duration  # an incident with no detection for this long is closed
    grace: Duration  # out-of-order input late by up to this gives the same incidents as sorted
    # a fire signal's id is remembered this long after its event time (plus the grace): a copy
    # within it is dropped as a duplicate, a later one counts again; it bounds the engine's state
    dedup_window: Duration = timedelta(hours=2)
    evidence_cap: Annotated[int, Field(ge=1, le=1000)]
    outside_buffer_m: Annotated[float, Field(ge=0.0)]  # 0: outside is outside; >0: nearest cell
    region_level: Literal["district", "township", "village"] | None  # never merged across


class TriangulationRule(_Rule):
    """Where a camera's smoke is, from its bearing (engine/sights.py, geo/sight.py)."""

    enabled: bool = True  # false: a camera detection is placed where its record says
    window: Duration = timedelta(minutes=10)  # sights this close in event time cross each other
    max_range_km: Positive = 15.0  # how far a tower camera sees smoke: no fix beyond it
    min_angle_deg: Annotated[float, Field(ge=1.0, le=90.0)] = 15.0  # shallower: no crossing
    bearing_error_deg: Annotated[float, Field(gt=0.0, lt=90.0)] = 1.5  # 1-sigma of a bearing


class DeviceSourceRule(_Rule):
    """When one source's device counts as down (engine/health.py)."""

    interval: Annotated[Duration, Field(gt=timedelta(0))]  # expected until it has its own
    tolerance: Annotated[float, Field(ge=1.0)]  # silent for this many intervals...
    min_silence: Duration  # ...and at least this long: down


class DeviceRules(_Rule):
    """Device health: a device silent for longer than its tolerance is down, a grid cell whose
    every watching device is down is blind. Sources without a rule are not watched."""

    enabled: bool = False
    sensor: DeviceSourceRule | None = None
    camera: DeviceSourceRule | None = None
    # gaps between reports before a device is judged by its own mean interval alone (before,
    # by the larger of that and the source's `interval`); once learned, a silence that made it
    # down does not count into its interval
    learn_after: Annotated[int, Field(ge=1, le=10_000)] = 5
    camera_watch_km: Positive = 8.0  # a camera watches the cells whose centre is this close

    def rule(self, source: Source) -> DeviceSourceRule | None:
        return getattr(self, source.value, None) if self.enabled else None


class Step(_Rule):
    min: float
    points: int


class SeverityRules(_Rule):
    """Points add up; the level is the highest whose threshold the points reach (else low)."""

    source_mix: dict[int, int]  # distinct source types in the incident -> points
    flame: int  # a camera saw flame
    frp_mw: list[Step]  # the incident's largest fire radiative power
    detections: list[Step]  # detections in the incident
    span_km: list[Step] = []  # diagonal of the bounding box of its detections: a fire spreading
    risk: dict[str, int]  # the cell's risk class -> points (unknown classes: 0)
    levels: dict[Severity, int]  # minimum points for moderate, high, critical

    @model_validator(mode="after")
    def _levels(self) -> SeverityRules:
        missing = {Severity.MODERATE, Severity.HIGH, Severity.CRITICAL} - set(self.levels)
        if missing:
            raise ValueError(f"levels needs a threshold for {sorted(missing)}")
        return self


class MaskReason(StrEnum):
    CONTROLLED_BURN = "controlled_burn"
    KNOWN_HEAT_SOURCE = "known_heat_source"
    INDUSTRIAL_SITE = "industrial_site"
    OTHER = "other"
    MUTED = "muted"  # a grid cell muted for a while by an operator (POST /v1/masks)


class Circle(_Rule):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    radius_m: Positive


class Mask(_Rule):
    """A suppression mask: detections inside it (and inside its time window) are suppressed."""

    name: Annotated[str, Field(min_length=1)]
    reason: MaskReason
    polygon: list[tuple[float, float]] | None = None  # exterior ring, [lon, lat] pairs
    geometry: dict[str, Any] | None = None  # a GeoJSON Polygon or MultiPolygon
    circle: Circle | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    sources: list[Source] | None = None  # None: every source

    @model_validator(mode="after")
    def _one_shape(self) -> Mask:
        shapes = [s for s in (self.polygon, self.geometry, self.circle) if s is not None]
        if len(shapes) != 1:
            raise ValueError("a mask needs exactly one of polygon, geometry, circle")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("a polygon needs at least 3 [lon, lat] points")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def active(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


Level = Literal["team", "village", "township", "district"]
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


class ClosedLoopRule(_Rule):
    """A false-alarm closure with one of `causes` becomes a suppression mask at that place."""

    enabled: bool
    causes: list[str]
    radius_m: Positive
    ttl: Duration


class MaintenanceRule(_Rule):
    """Who is told of device health (linkage/maintenance.py): a level of the cell's chain or an
    organisation, per kind. Maintenance orders are never fire warnings."""

    device_down: list[str] = ["team"]  # a device went silent (and is told when it is back)
    cell_blind: list[str] = ["team", "township"]  # no device watches a cell any more


class RoutingRules(_Rule):
    """Who is told of an incident, how fast they must answer, and who is told when they do not."""

    sla: dict[Severity, Duration]  # acknowledge within, by severity
    escalation: Annotated[list[Level], Field(min_length=1)]  # the chain, from the cell upwards
    top_renotify_max: (
        Duration  # at the top of the chain, re-notify at doubling intervals up to this
    )
    notify: dict[Severity, list[str]]  # more targets by severity: a level or an organisation
    renotify_on_severity_rise: bool  # only a rise in severity re-notifies, never other updates
    fallback: Annotated[str, Field(min_length=1)]  # organisation told when a cell has no chain
    closed_loop: ClosedLoopRule
    report_utc_offset: str  # days of the report, e.g. "+08:00"
    # how often a long-running dispatcher runs escalation (optional: older rule files lack it)
    escalate_every: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=30)
    # who is told of silent devices and blind cells (optional: older rule files lack it)
    maintenance: MaintenanceRule = MaintenanceRule()

    @model_validator(mode="after")
    def _complete(self) -> RoutingRules:
        missing = set(Severity) - set(self.sla)
        if missing:
            raise ValueError(f"sla needs a duration for {sorted(missing)}")
        if len(set(self.escalation)) != len(self.escalation):
            raise ValueError("escalation levels must not repeat")
        if not _OFFSET.match(self.report_utc_offset):
            raise ValueError("report_utc_offset is like '+08:00' or '-05:00'")
        return self

    @property
    def utc_offset(self) -> timedelta:
        match = _OFFSET.match(self.report_utc_offset)
        assert match is not None  # validated
        sign = -1 if match.group(1) == "-" else 1
        return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))


class RuleSet(_Rule):
    sources: SourceRules
    corroboration: CorroborationRule
    incidents: IncidentRules
    severity: SeverityRules
    masks: list[Mask] = []
    # optional, so rule sets written before it load; rules/detection.yaml states it
    triangulation: TriangulationRule = TriangulationRule()
    devices: DeviceRules = DeviceRules()  # optional: off unless a rule file turns it on
    routing: RoutingRules | None = None  # needed by the linkage queue, not by the engine

    @model_validator(mode="after")
    def _unique_masks(self) -> RuleSet:
        names = [m.name for m in self.masks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"mask names must be unique; repeated: {dup}")
        return self


SECTIONS: frozenset[str] = frozenset(RuleSet.model_fields)
