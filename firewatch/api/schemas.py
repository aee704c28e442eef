"""Request and response bodies of the HTTP API: the linkage's own models (Order, LogEntry, the
report's Row) wrapped, never copied field by field."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from firewatch.linkage.model import LogEntry, Order, Resolution
from firewatch.linkage.report import Report, Row
from firewatch.model import Reject, RejectReason


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
    team: str
    orders: list[Order]  # the team's open orders, oldest first


class OrderDetail(BaseModel):
    order: Order
    log: list[LogEntry]  # every transition and notification, timestamped


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

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        return cls(first=report.first, last=report.last, rows=report.rows)


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
