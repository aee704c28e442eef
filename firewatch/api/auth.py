"""Bearer-token auth and role checks, as FastAPI dependencies.

`authenticate` finds the token (tokens.py: by its sha256, confirmed in constant time) and counts
the request against its rate limit; `require(...)` makes a dependency that admits the given roles
and `admin`; `team_scope` and `order_scope` keep a `team:<id>` token to its own team's orders,
refusing another team's before anything changes. Tokens are never logged or echoed: messages name
the token's name and role only.
"""

# No `from __future__ import annotations` here: FastAPI reads the dependencies of the closures
# below from their annotations, which name local variables.
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from firewatch.api.deps import LinkageDep, State
from firewatch.api.tokens import Role, RoleKind

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token made by `firewatch token add --role R --name N`",
)
SESSION_COOKIE = "fw_session"
# a browser's EventSource cannot send a header: POST /v1/session puts the bearer token in an
# HttpOnly, SameSite=Strict cookie, which is accepted for reading (GET) only, so a page on
# another site can never make a change with it
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="Set by POST /v1/session; accepted on GET requests only (the event stream)",
)
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and role (never the token)."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """Who acted, as the order's log and the change feed record it: `team:<t>` for a team's
        token, `<role>:<token name>` for the others (e.g. `admin:alice`)."""
        return str(self.role) if self.role.kind == "team" else f"{self.role.kind}:{self.name}"


@dataclass(frozen=True)
class OrderRef:
    """An order the caller may act on (checked by order_scope), and who the caller is."""

    id: str
    principal: Principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    api: State,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    if credentials is not None:
        token = credentials.credentials
    elif cookie and request.method in SAFE_METHODS:
        token = cookie
    else:
        raise _unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    found = api.tokens.find(token)
    if found is None:
        raise _unauthorized("unknown or revoked bearer token")
    digest, record = found
    verdict = api.limiter.hit(digest, api.clock.now())
    if not verdict.allowed:
        limiter = api.limiter
        raise HTTPException(
            429,
            f"token {record.name!r}: more than {limiter.limit} requests in "
            f"{limiter.window_s:g} s (FIREWATCH_API_RATE_LIMIT); retry in {verdict.retry_after} s",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    return Principal(record.name, record.parsed_role)


Caller = Annotated[Principal, Depends(authenticate)]


def require(*kinds: RoleKind) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting tokens whose role is one of `kinds`, or admin; 403 otherwise."""
    allowed = sorted({"admin", *kinds})

    async def check(principal: Caller) -> Principal:
        if principal.role.kind not in allowed:
            raise HTTPException(
                403,
                f"token {principal.name!r} has role {principal.role}: this needs "
                f"{' or '.join('team:<id>' if k == 'team' else k for k in allowed)}",
            )
        return principal

    return check


async def team_scope(
    principal: Annotated[Principal, Depends(require("dashboard", "team"))],
    team: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="a team's id; a team token may give only its own (default: its own; "
            "for the dashboard and admin: every team)",
        ),
    ] = None,
) -> str | None:
    """The team whose orders or incidents are asked for: a team token's own (403 for another);
    for the dashboard and admin the one they name, or None when they name none (every team)."""
    own = principal.role.team
    if own is not None:
        if team is not None and team != own:
            raise HTTPException(
                403, f"token {principal.name!r} is for team {own}: it may not list team {team}"
            )
        return own
    return team


def order_scope(*kinds: RoleKind) -> Callable[[str, Principal, LinkageDep], OrderRef]:
    """A dependency admitting `kinds` (and admin) to the order in the path; a team token only to
    its own team's orders (403 for another team's, checked before anything changes; 404 when
    there is no such order)."""
    role_check = require(*kinds)

    def check(
        order_id: str,
        principal: Annotated[Principal, Depends(role_check)],
        linkage: LinkageDep,
    ) -> OrderRef:
        own = principal.role.team
        if own is not None:
            order = linkage.store.get(order_id)  # OrderNotFound: 404
            if order.team != own:
                raise HTTPException(
                    403,
                    f"order {order_id} belongs to team {order.team or '(none)'}: token "
                    f"{principal.name!r} is for team {own}",
                )
        return OrderRef(order_id, principal)

    return check
