"""Who the caller is (GET /v1/whoami) and the browser session cookie (POST/DELETE /v1/session).

A browser's EventSource cannot send an Authorization header, so the dashboard trades its bearer
token for an HttpOnly, SameSite=Strict cookie holding the same token; auth.py accepts that cookie
on GET requests only (the event stream), never for a change."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from firewatch.api.auth import SESSION_COOKIE, Caller, bearer
from firewatch.api.deps import State
from firewatch.api.errors import AUTH, responses

router = APIRouter(prefix="/v1", tags=["session"])
SESSION_MAX_AGE = 12 * 3600  # seconds: a monitoring shift; the page asks again after


class WhoAmI(BaseModel):
    name: str  # the token's name
    role: str  # `ingest`, `dashboard`, `admin` or `team:<id>`
    team: str | None  # the team of a team token
    # the server's clock, at the report's UTC offset (routing.yaml report_utc_offset): relative
    # times on a page are counted from it, and its date is the report's "today"
    now: datetime
    rate: float  # simulated seconds per wall second: 1, or more in the accelerated demo
    feed_id: str  # the change feed's newest entry: open GET /v1/stream?after=<it> after loading


@router.get(
    "/whoami", summary="The token's name and role, the server's time", responses=responses(*AUTH)
)
def whoami(caller: Caller, api: State) -> WhoAmI:
    return WhoAmI(
        name=caller.name,
        role=str(caller.role),
        team=caller.role.team,
        now=api.clock.now().astimezone(timezone(api.linkage.routing.utc_offset)),
        rate=float(getattr(api.clock, "rate", 1.0)),
        feed_id=api.linkage.store.feed_last_id(),
    )


@router.post(
    "/session",
    status_code=204,
    summary="Put the bearer token in a session cookie for the event stream (GET only)",
    responses=responses(*AUTH),
)
def open_session(
    _: Caller,
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    assert credentials is not None  # Caller has checked it: a cookie is not accepted on POST
    response.set_cookie(
        SESSION_COOKIE,
        credentials.credentials,
        max_age=SESSION_MAX_AGE,
        path="/v1/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.delete("/session", status_code=204, summary="Drop the session cookie")
def close_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/v1/", httponly=True, samesite="strict")
