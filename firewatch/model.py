"""The data that flows through firewatch: detections in, rejects aside, incident events out.

Field names of the detection models are the contract with sensor, camera and satellite vendors.
"""

from __future__ import annotations

import re
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


class DeviceEventKind(StrEnum):
    """Device health (engine/health.py): a device is new when first heard; silent for longer
    than its tolerance it is down, and up again with its next record; a cell whose every
    watching device is down is blind, and watched again when one of them comes back."""

    DEVICE_NEW = "device_new"
    DEVICE_DOWN = "device_down"
    DEVICE_UP = "device_up"
    CELL_BLIND = "cell_blind"
    CELL_WATCHED = "cell_watched"


class DeviceEvent(BaseModel):
    """A change in what the grid can see, beside the incident events in every output (replay,
    Kafka, the linkage queue, where it becomes a maintenance order, never a fire warning)."""

    model_config = ConfigDict(frozen=True)

    event: DeviceEventKind
    event_id: str  # deterministic: the same input gives the same ids
    # device_new: its first record; device_down: when its silence passed its tolerance;
    # device_up: its first record back;
    # cell_blind: when its last watching device went down; cell_watched: when one came back
    observed_at: datetime
    device_id: str | None  # None for a cell's event
    source: Source | None  # the device's (None for a cell's event)
    grid_id: str  # the device's cell (a sensor's, or the cell a camera's first record was in)
    grid_name: str | None
    team: str | None
    village: str | None
    township: str | None
    district: str | None
    lat: float  # where the device stands (a cell's event: a point inside the cell)
    lon: float
    last_heard: datetime | None = None  # down and up: its last record before the silence
    interval_s: float | None = None  # down and up: the reporting interval it was judged by
    silent_s: float | None = None  # device_up: how long it was silent
    devices: int = 0  # cell events: how many devices watch the cell


Event = IncidentEvent | DeviceEvent
_DEVICE_KINDS = frozenset(k.value for k in DeviceEventKind)


def event_key(e: Event) -> str:
    """What an event is about, as the incidents topic's message key: its incident (an
    incident's events stay in order on one partition), its device, or for a cell's, the cell."""
    if isinstance(e, IncidentEvent):
        return e.incident_id
    return e.device_id or e.grid_id


def parse_event(data: bytes | str) -> Event:
    """One event line (JSON) of either kind, told apart by its `event` field."""
    found = _EVENT_KIND.search(data if isinstance(data, bytes) else data.encode())
    if found is not None and found.group(1).decode() in _DEVICE_KINDS:
        return DeviceEvent.model_validate_json(data)
    return IncidentEvent.model_validate_json(data)


_EVENT_KIND = re.compile(rb'"event"\s*:\s*"([a-z_]+)"')


def utc_datetime(ts: float) -> datetime:
    """Epoch seconds to an aware UTC datetime, rounded to the millisecond (stable output)."""
    return datetime.fromtimestamp(round(ts, 3), UTC)
