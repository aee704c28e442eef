"""Incidents as the linkage queue recorded them (linkage/incidents.py): a filtered listing in
pages, or the whole listing as CSV, and one incident with its events, its order and the order's
log. A team's token sees its own team's incidents only.

Filters arrive as text and are read here, so a bad one answers 400 naming the parameter (not
FastAPI's 422); the listing itself is `DispatchStore.incidents`, with its bounded cost per page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import Field, TypeAdapter, ValidationError

from firewatch.api.auth import Principal, require, team_scope
from firewatch.api.deps import ClockDep, LinkageDep
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import IncidentPage
from firewatch.linkage.model import IncidentNotFound, IncidentRecord, IncidentStatus, QueryError
from firewatch.linkage.service import Linkage
from firewatch.model import Severity

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])

Reader = Annotated[Principal, Depends(require("dashboard", "team"))]
Team = Annotated[str | None, Depends(team_scope)]
T = TypeVar("T")

MAX_LIMIT = 500  # incidents one page returns at most
CSV_PAGE = 500  # incidents read per page while a CSV export streams
CSV = "text/csv"
COLUMNS = (
    "id", "status", "severity", "first_seen", "last_seen", "detections", "grid_id", "grid_name",
    "team", "village", "township", "district", "lat", "lon", "rule", "order_id", "closed_at",
    "current_lat", "current_lon", "area_km2", "teams", "located_by", "uncertainty_m",
)  # fmt: skip
_TIME = TypeAdapter(datetime)
_STATUS = TypeAdapter(IncidentStatus)
_SEVERITY = TypeAdapter(Severity)
_FORMAT = TypeAdapter(Literal["json", "csv"])
_LIMIT = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_LIMIT)])
_WHEN = "an ISO 8601 time with a UTC offset, e.g. 2026-04-04T10:00:00+08:00 (write + as %2B)"

_LIST = responses(*AUTH, 400)
_LIST[200] = {
    "description": "A page of incidents (JSON), or with `format=csv` or `Accept: text/csv` "
    "every incident of the query as CSV (an attachment)",
    "content": {CSV: {"schema": {"type": "string", "description": ", ".join(COLUMNS)}}},
}
_ONE = responses(*AUTH, 404)
_ONE[404] = {**_ONE[404], "description": "No such incident"}
_ONE[403] = {**_ONE[403], "description": "The token's role may not read incidents, or the "
             "incident belongs to another team"}  # fmt: skip


@dataclass(frozen=True)
class Filters:
    """The listing's filters (team aside: team_scope decides it); None: any."""

    status: IncidentStatus | None
    severity: Severity | None
    village: str | None
    township: str | None
    district: str | None
    since: datetime | None
    until: datetime | None

    def of(self, team: str | None) -> dict[str, Any]:
        """Keyword arguments of DispatchStore.incidents."""
        return {**vars(self), "team": team}


def _read(name: str, raw: str | None, adapter: TypeAdapter[T], expected: str) -> T | None:
    if raw is None:
        return None
    try:
        return adapter.validate_python(raw)
    except ValidationError:
        raise HTTPException(400, f"query parameter `{name}`: {raw!r} is not {expected}") from None


def _when(name: str, raw: str | None) -> datetime | None:
    at = _read(name, raw, _TIME, _WHEN)
    if at is not None and at.tzinfo is None:
        raise HTTPException(400, f"query parameter `{name}`: {raw!r} has no UTC offset: {_WHEN}")
    return at


def _place(name: str, raw: str | None) -> str | None:
    if raw is not None and not 0 < len(raw) <= 200:
        raise HTTPException(400, f"query parameter `{name}`: give 1 to 200 characters")
    return raw


def _text(description: str) -> Any:
    return Query(description=description)


def _choice(values: list[str], description: str) -> Any:
    return Query(description=description, json_schema_extra={"enum": values})


def _time(description: str) -> Any:
    return Query(description=description, json_schema_extra={"format": "date-time"})


_STATUSES = [s.value for s in IncidentStatus]
_SEVERITIES = [s.value for s in Severity]


def filters(
    status: Annotated[str | None, _choice(_STATUSES, "open or closed")] = None,
    severity: Annotated[str | None, _choice(_SEVERITIES, "the incident's severity")] = None,
    village: Annotated[str | None, _text("the incident's village")] = None,
    township: Annotated[str | None, _text("the incident's township")] = None,
    district: Annotated[str | None, _text("the incident's district")] = None,
    since: Annotated[str | None, _time(f"first detection at or after: {_WHEN}")] = None,
    until: Annotated[str | None, _time(f"first detection at or before: {_WHEN}")] = None,
) -> Filters:
    out = Filters(
        status=_read("status", status, _STATUS, "open or closed"),
        severity=_read("severity", severity, _SEVERITY, f"one of {', '.join(_SEVERITIES)}"),
        village=_place("village", village),
        township=_place("township", township),
        district=_place("district", district),
        since=_when("since", since),
        until=_when("until", until),
    )
    if out.since and out.until and out.since > out.until:
        raise HTTPException(400, f"query parameter `since` ({since}) is after `until` ({until})")
    return out


def _page(
    linkage: Linkage, f: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[IncidentRecord], str | None]:
    try:
        return linkage.store.incidents(**f, limit=limit, cursor=cursor)
    except QueryError as exc:  # the cursor: the other values are read above
        raise HTTPException(400, f"query parameter `cursor`: {exc}") from None


def _wants_csv(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return _read("format", fmt, _FORMAT, "json or csv") == "csv"
    media = {part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")}
    return CSV in media


@router.get(
    "",
    summary="Incidents, newest first by first detection: a page, or all of them as CSV",
    response_model=IncidentPage,
    responses=_LIST,
)
def list_incidents(
    team: Team,
    given: Annotated[Filters, Depends(filters)],
    linkage: LinkageDep,
    clock: ClockDep,
    limit: Annotated[str | None, Query(description=f"1..{MAX_LIMIT}, default 50 (JSON)")] = None,
    cursor: Annotated[str | None, Query(description="`next` of the previous page (JSON)")] = None,
    fmt: Annotated[
        str | None,
        Query(
            alias="format",
            description="json (default) or csv: every incident of the query, all pages",
            json_schema_extra={"enum": ["json", "csv"]},
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> IncidentPage | StreamingResponse:
    f = given.of(team)
    if _wants_csv(fmt, accept):
        return _export(linkage, f, clock.now())
    size = _read("limit", limit, _LIMIT, f"a whole number 1..{MAX_LIMIT}")
    records, nxt = _page(linkage, f, size or 50, cursor)
    return IncidentPage(incidents=records, next=nxt)


def _export(linkage: Linkage, f: dict[str, Any], now: datetime) -> StreamingResponse:
    """Every incident of the query as CSV, read page by page while it is sent."""
    first = _page(linkage, f, CSV_PAGE, None)  # a bad query answers 400 before any byte is sent

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        records, nxt = first
        while True:
            writer.writerows(_row(r) for r in records)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if nxt is None:
                return
            records, nxt = linkage.store.incidents(**f, limit=CSV_PAGE, cursor=nxt)

    name = f"incidents-{now:%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        lines(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _row(r: IncidentRecord) -> list[str]:
    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return " ".join(value)  # teams
        return value.isoformat() if isinstance(value, datetime) else str(value)

    return [text(getattr(r, column)) for column in COLUMNS]


@router.get(
    "/{incident_id}",
    summary="An incident with its events, its dispatch order and the order's log",
    responses=_ONE,
)
def show_incident(
    incident_id: Annotated[str, Path(min_length=1, max_length=200)],
    principal: Reader,
    linkage: LinkageDep,
) -> IncidentRecord:
    try:
        record = linkage.store.incident(incident_id)
    except IncidentNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    own = principal.role.team
    if own is not None and record.team != own:
        raise HTTPException(
            403,
            f"incident {incident_id} belongs to team {record.team or '(none)'}: token "
            f"{principal.name!r} is for team {own}",
        )
    return record
