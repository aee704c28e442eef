"""Dispatch orders: what a field team is asked to do about an incident, and what it did; and
incident records: every incident event the queue was given, kept per incident."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from firewatch.errors import FirewatchError
from firewatch.model import EventKind, IncidentEvent, LocatedBy, Severity, Source


class OrderState(StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


class Resolution(StrEnum):
    """The outcome a team gives when it closes an order."""

    EXTINGUISHED = "extinguished"
    FALSE_ALARM = "false_alarm"
    CONTROLLED_BURN = "controlled_burn"
    OTHER = "other"


class Action(StrEnum):
    ACK = "ack"
    ARRIVE = "arrive"
    CLOSE = "close"


class Order(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    incident_id: str
    state: OrderState
    severity: Severity
    team: str | None
    grid_id: str
    grid_name: str | None
    village: str | None
    township: str | None
    district: str | None
    lat: float
    lon: float
    created_at: datetime  # dispatched
    detected_at: datetime | None = None  # the incident's first detection (None: order predates it)
    acked_at: datetime | None = None
    on_scene_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: Resolution | None = None
    cause: str | None = None
    note: str | None = None
    responder: str  # who must answer now: the team, or the level it was escalated to
    level: int = 0  # index into the escalation chain
    escalations: int = 0
    sla_deadline: datetime | None = None  # None once acknowledged or closed
    incident_closed_at: datetime | None = None  # the engine closed the incident (inactivity)
    mask: str | None = (
        None  # the suppression mask its false-alarm closure made (even if removed since)
    )


class LogEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    # created | ack | arrive | close | mask | escalated | notified | severity | reached |
    # incident_closed
    kind: str
    detail: str
    by: str | None = None  # who did it (ack, arrive, close, mask), when the caller said


class IncidentStatus(StrEnum):
    OPEN = "open"  # the engine has not closed it
    CLOSED = "closed"  # closed for inactivity (its order, if any, may still be open)


class IncidentRecord(BaseModel):
    """An incident as the linkage queue recorded it from its events: the latest state.

    `DispatchStore.incident(id)` fills `events`, `order` and `order_log`; listings leave them
    empty. An incident whose events predate incident records has no record (only its order)."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: IncidentStatus
    severity: Severity
    grid_id: str
    grid_name: str | None
    team: str | None
    village: str | None
    township: str | None
    district: str | None
    lat: float  # where it is placed (IncidentEvent.lat: its first detection's, until a better)
    lon: float
    first_seen: datetime
    last_seen: datetime
    detections: int
    sources: dict[str, int]
    rule: str  # the rule that opened it
    evidence: list[str]  # detection ids, first ones, capped
    # where the fire is now and how far it spread (IncidentEvent; None, 0 and [] in records of
    # a firewatch before spreading fires were followed)
    current_lat: float | None = None
    current_lon: float | None = None
    extent: tuple[float, float, float, float] | None = None  # west, south, east, north
    area_km2: float = 0.0
    teams: list[str] = Field(default_factory=list)  # whose cells it reached, the first: `team`
    located_by: LocatedBy = LocatedBy.DETECTION  # how lat/lon were found (IncidentEvent)
    uncertainty_m: float | None = None  # ~95% radius; None: a detection's own place
    closed_at: datetime | None = None  # event time of its `closed` event (inactivity deadline)
    recorded_at: datetime  # when the queue recorded its first event
    updated_at: datetime  # when the queue recorded its latest event
    last_event: EventKind
    order_id: str | None = None  # its dispatch order
    events: list[IncidentEvent] = Field(default_factory=list)
    order: Order | None = None
    order_log: list[LogEntry] = Field(default_factory=list)


class MaintenanceState(StrEnum):
    OPEN = "open"  # the device is silent, or the cell watched by nobody
    RESOLVED = "resolved"  # the device (or a watcher) is back


class MaintenanceOrder(BaseModel):
    """A device's outage or a blind cell (linkage/maintenance.py): maintenance, not a fire."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["device", "cell"]
    subject: str  # the device id, or the cell's grid id
    source: Source | None  # the device's
    state: MaintenanceState
    since: datetime  # device_down / cell_blind: when it began (event time)
    resolved_at: datetime | None = None  # device_up / cell_watched (event time)
    silent_s: float | None = None  # since -> resolved_at
    created_at: datetime  # when the queue took it (its clock)
    grid_id: str
    grid_name: str | None
    team: str | None
    village: str | None
    township: str | None
    district: str | None
    lat: float
    lon: float
    last_heard: datetime | None = None  # a device's last record before its silence
    interval_s: float | None = None  # the interval it was judged by
    devices: int = 0  # a cell's watching devices
    acked_at: datetime | None = None  # a team acknowledged it: someone is on it (its clock)
    acked_by: str | None = None  # who: `team:<id>`, or `<role>:<token name>`, or a CLI --by


class DispatchError(FirewatchError):
    """A dispatch command that cannot be carried out; nothing was changed."""


class OrderNotFound(DispatchError):
    pass


class InvalidTransition(DispatchError):
    pass


class QueryError(FirewatchError):
    """A read of the linkage queue that cannot be answered: a bad cursor, limit or feed id, an
    unknown incident (names the value at fault)."""


class IncidentNotFound(QueryError):
    pass


class FeedGap(QueryError):
    """The change feed no longer holds what follows an entry id (trimmed, or the feed is not the
    one the id came from): a reader must reload its state instead of resuming."""
