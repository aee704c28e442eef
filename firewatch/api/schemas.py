"""Request and response bodies of the HTTP API: the linkage's own models (Order, LogEntry, the
report's Row) wrapped, never copied field by field."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from firewatch.linkage.model import (
    IncidentRecord,
    LogEntry,
    MaintenanceOrder,
    Order,
    Resolution,
)
from firewatch.linkage.report import Report, Row
from firewatch.linkage.store import MaskOrigin
from firewatch.linkage.uptime import HealthRow
from firewatch.model import Reject, RejectReason
from firewatch.rules.model import Mask


class ErrorOut(BaseModel):
    """Every error answer: what is at fault, in words."""

    detail: str


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class CheckOut(BaseModel):
    name: str  # `redis`, `kafka`
    ok: bool
    detail: str  # what answered, or what is down and why


class ReadyOut(BaseModel):
    ready: bool
    checks: list[CheckOut]


class OrderList(BaseModel):
    team: str | None  # None: every team's (the dispatch board)
    # a team's open orders, oldest first; the board's, newest first (at most `limit`: as many
    # as `limit` may mean there are more)
    orders: list[Order]


class OrderDetail(BaseModel):
    order: Order
    log: list[LogEntry]  # every transition and notification, timestamped


class MaintenanceList(BaseModel):
    team: str | None  # None: every team's
    orders: list[MaintenanceOrder]  # open ones, newest first


class MaintenanceAckOut(BaseModel):
    order: MaintenanceOrder
    changed: bool  # False: acknowledged before (by whoever answered first)


class TransitionOut(BaseModel):
    order: Order
    changed: bool  # False: the same transition was already done (transitions are idempotent)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Resolution
    cause: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class ReportOut(BaseModel):
    """linkage/report.py's Report: warnings issued in [first, last] (or ever, when null)."""

    first: date | None
    last: date | None
    rows: list[Row]
    # device uptime and blind-cell hours (maintenance, not fire warnings), overall and by
    # township and district (of those asked for in `by`)
    devices: list[HealthRow] = []

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        return cls(first=report.first, last=report.last, rows=report.rows, devices=report.devices)


class RejectOut(BaseModel):
    index: int  # 0-based position in the JSON array, or line of the JSONL body
    reason: RejectReason
    field: str | None
    message: str

    @classmethod
    def of(cls, reject: Reject) -> RejectOut:
        assert reject.line is not None  # validated with first_line=0: the record's index
        return cls(
            index=reject.line, reason=reject.reason, field=reject.field, message=reject.message
        )


class IngestOut(BaseModel):
    accepted: int
    rejected: int
    rejects: list[RejectOut]
    # where the accepted records went: the in-process engine (and its incident events to the
    # linkage queue), or the Kafka detections topic (for the stream workers)
    destination: Literal["engine", "kafka"]


# -- incidents, masks, the grid and the cameras (incidents.py, masks.py, grid.py) --------------
class IncidentPage(BaseModel):
    """A page of the incident listing, newest first by first detection (events, order and
    order_log are left empty: GET /v1/incidents/{id} has them)."""

    incidents: list[IncidentRecord]
    next: str | None  # the `cursor` of the next page; None: this was the last


class MaskOut(BaseModel):
    """A suppression mask in Redis: the closed loop's (false alarms) or a muted cell."""

    mask: Mask
    active: bool  # its time window holds the API's clock now
    grid_id: str | None  # the muted cell (None: not a cell mute)
    origin: MaskOrigin | None  # who made it by hand (None: the closed loop; see the order's log)


class MaskList(BaseModel):
    masks: list[MaskOut]  # by name


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid_id: Annotated[str, Field(min_length=1, max_length=200)]
    minutes: Annotated[int, Field(ge=1, le=43200)]  # up to 30 days
    note: Annotated[str, Field(max_length=2000)] | None = None


class CellProperties(BaseModel):
    grid_id: str
    name: str | None
    team: str | None
    village: str | None
    township: str | None
    district: str | None


class PolygonGeometry(BaseModel):
    """A GeoJSON Polygon or MultiPolygon: [lon, lat] positions."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class CellFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str  # the grid_id
    properties: CellProperties
    geometry: PolygonGeometry


class GridOut(BaseModel):
    """The forest grid's cells as a GeoJSON FeatureCollection (geometries simplified)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[CellFeature]


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]  # [lon, lat]


class CameraProperties(BaseModel):
    device_id: str
    range_m: float | None = None  # how far it sees, when the cameras file says


class CameraFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str  # the device_id
    properties: CameraProperties
    geometry: PointGeometry


class CamerasOut(BaseModel):
    """Camera positions as a GeoJSON FeatureCollection (FIREWATCH_CAMERAS; empty without it)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[CameraFeature]
