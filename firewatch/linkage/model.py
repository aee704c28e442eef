"""Dispatch orders: what a field team is asked to do about an incident, and what it did."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from firewatch.errors import FirewatchError
from firewatch.model import Severity


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
    # created | ack | arrive | close | mask | escalated | notified | severity | incident_closed
    kind: str
    detail: str


class DispatchError(FirewatchError):
    """A dispatch command that cannot be carried out; nothing was changed."""


class OrderNotFound(DispatchError):
    pass


class InvalidTransition(DispatchError):
    pass
