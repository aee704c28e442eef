"""The data that flows through firewatch: detections in, rejects aside, incident events out.

Field names of the detection models are the contract with sensor, camera and satellite vendors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, NotRequired

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict


class Source(StrEnum):
    SENSOR = "sensor"
    CAMERA = "camera"
    SATELLITE = "satellite"


SOURCES: tuple[Source, ...] = (Source.SENSOR, Source.CAMERA, Source.SATELLITE)


class Outcome(StrEnum):
    """What became of one input record. Used in code, output and metric labels alike."""

    REJECTED = "rejected"  # failed validation; see RejectReason
    OUTSIDE = "outside"  # valid, but in no grid cell
    SUPPRESSED = "suppressed"  # matched a suppression mask or is a known static heat source
    IGNORED = "ignored"  # located, but no fire signal (a normal sensor reading, a weak camera hit)
    SUSPECT = "suspect"  # a fire signal that needs corroboration (opens only when corroborated)
    INCIDENT = "incident"  # a strong fire signal: opened an incident or joined one
    DUPLICATE = "duplicate"  # a fire signal whose detection id was seen before: changes nothing
    STALE = "stale"  # a fire signal older than the watermark by more than the inactivity window


class RejectReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    OVERSIZED_LINE = "oversized_line"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_COORDINATE = "bad_coordinate"  # NaN, infinite or out of range lat/lon
    NAIVE_TIMESTAMP = "naive_timestamp"  # observed_at without a UTC offset
    UNKNOWN_SOURCE = "unknown_source"
    INVALID_VALUE = "invalid_value"  # any other constraint (confidence out of 0..1, bad label, ...)
    # observed_at later than the time the record arrived (the reader's clock) + sources.max_future:
    # a device clock running ahead, which must not move event time for everyone else
    FUTURE_TIMESTAMP = "future_timestamp"


class EventKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


class LocatedBy(StrEnum):
    """How an incident (or one detection) was placed: where its record says (`detection`), at the
    crossing of two or more cameras' lines of sight (`triangulated`), or on one camera's line of
    sight (`line_of_sight`). Camera placement: engine/sights.py."""

    DETECTION = "detection"
    TRIANGULATED = "triangulated"
    LINE_OF_SIGHT = "line_of_sight"


class Severity(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}

Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _Detection(TypedDict):
    # A TypedDict, not a BaseModel: validating whole batches into plain dicts is two to three times
    # faster than building model instances, and the engine reads them once into numpy columns.
    id: NotRequired[Annotated[str, Field(min_length=1, max_length=200)]]
    device_id: Annotated[str, Field(min_length=1, max_length=200)]
    observed_at: AwareDatetime
    lat: Latitude
    lon: Longitude


class SensorDetection(_Detection):
    source: Literal["sensor"]
    confidence: NotRequired[Unit | None]
    readings: dict[str, Annotated[float, Field(allow_inf_nan=False)]]


class CameraDetection(_Detection):
    source: Literal["camera"]
    confidence: Unit
    label: Literal["smoke", "flame"]
    bearing_deg: NotRequired[Annotated[float, Field(ge=0.0, le=360.0, allow_inf_nan=False)] | None]
    camera_lat: NotRequired[Latitude | None]
    camera_lon: NotRequired[Longitude | None]


class SatelliteDetection(_Detection):
    source: Literal["satellite"]
    confidence: Unit
    frp_mw: NotRequired[Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None]
    scan_km: NotRequired[Annotated[float, Field(gt=0.0, le=50.0, allow_inf_nan=False)] | None]
    track_km: NotRequired[Annotated[float, Field(gt=0.0, le=50.0, allow_inf_nan=False)] | None]
    instrument: NotRequired[str | None]
    satellite: NotRequired[str | None]
    static: NotRequired[bool]


Detection = Annotated[
    SensorDetection | CameraDetection | SatelliteDetection, Field(discriminator="source")
]
AnyDetection = SensorDetection | CameraDetection | SatelliteDetection
DETECTIONS: TypeAdapter[list[AnyDetection]] = TypeAdapter(list[Detection])


class Reject(BaseModel):
    """One record that could not be used, with where it came from and why."""

    model_config = ConfigDict(frozen=True)

    origin: str  # file path or topic
    line: int | None = None  # 1-based line (or CSV row) number
    offset: int | None = None  # byte offset in a file, or the Kafka offset
    reason: RejectReason
    field: str | None = None  # the field at fault, dotted, when there is one
    message: str
    raw: str = ""  # the start of the offending record, for a human to look at


class IncidentEvent(BaseModel):
    """One line of `firewatch replay --out`: the contract with dispatch, dashboards and Kafka."""

    model_config = ConfigDict(frozen=True)

    event: EventKind
    event_id: str  # deterministic: the same input gives the same ids (dedup downstream)
    incident_id: str  # derived from the incident's first detection
    observed_at: datetime  # event time of the detection (or inactivity deadline) that caused it
    severity: Severity
    grid_id: str
    grid_name: str | None
    team: str | None
    village: str | None
    township: str | None
    district: str | None
    lat: float  # where the incident is placed: its first detection's place, until a better one
    lon: float  # (a camera's line of sight gives way to a crossing or a detection's own place)
    sources: dict[str, int]  # detections per source
    detections: int
    first_seen: datetime
    last_seen: datetime
    rule: str  # the rule that opened the incident
    evidence: list[str]  # detection ids, first ones, capped
    # where the fire is now: the centroid of its last detections (rules: incidents.track_points);
    # None in events of a firewatch before spreading fires were followed
    current_lat: float | None = None
    current_lon: float | None = None
    extent: tuple[float, float, float, float] | None = None  # west, south, east, north
    area_km2: float = 0.0  # of that bounding box
    teams: list[str] = []  # teams whose cells its detections fell in, in the order reached
    # how `lat`/`lon` (and the grid cell) were found, and the radius in metres that holds the fire
    # with about 95% confidence (None: a detection's own place, as its device reported it)
    located_by: LocatedBy = LocatedBy.DETECTION
    uncertainty_m: float | None = None


def utc_datetime(ts: float) -> datetime:
    """Epoch seconds to an aware UTC datetime, rounded to the millisecond (stable output)."""
    return datetime.fromtimestamp(round(ts, 3), UTC)
