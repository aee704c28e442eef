"""GET /v1/report: linkage/report.py's figures (response and closure rates, durations) as JSON."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from firewatch.api.auth import Principal, require
from firewatch.api.deps import LinkageDep
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import ReportOut

router = APIRouter(prefix="/v1/report", tags=["report"])

Reader = Annotated[Principal, Depends(require("dashboard"))]


@router.get(
    "",
    summary="Warnings, response and closure rates for warnings issued in [from, to]",
    responses=responses(*AUTH, 400, 500),
)
def get_report(
    _: Reader,
    linkage: LinkageDep,
    first: Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    last: Annotated[date | None, Query(alias="to", description="last day, YYYY-MM-DD")] = None,
    by: Annotated[str, Query(description="team,township,district ('' for none)")] = (
        "township,district"
    ),
) -> ReportOut:
    try:
        report = linkage.report(first, last, [b for b in by.split(",") if b])
    except ValueError as exc:  # an unknown scope kind, or half a range
        raise HTTPException(400, str(exc)) from None
    return ReportOut.of(report)
