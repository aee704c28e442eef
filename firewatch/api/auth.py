"""Bearer-token auth and role checks, as FastAPI dependencies.

`authenticate` finds the token and counts the request against its rate limit (gate.py: one
round trip; a field team's ack and arrive also make their change in it: `order_act`);
`require(...)` makes a dependency that admits the given roles
and `admin`; `team_scope` and `order_scope` keep a `team:<id>` token to its own team's orders,
refusing another team's before anything changes. Tokens are never logged or echoed: messages name
the token's name and role only.
"""

# No `from __future__ import annotations` here: FastAPI reads the dependencies of the closures
# below from their annotations, which name local variables.
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from firewatch.api.deps import LinkageDep, State
from firewatch.api.gate import Admission, Gate
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
MISSING = "missing bearer token: send `Authorization: Bearer <token>`"


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
    """An order in the path, and who asks for it (order_scope, order_change)."""

    id: str
    principal: Principal

    @property
    def team(self) -> str | None:
        """The caller's team, for a team token: its only orders."""
        return self.principal.role.team

    def forbidden(self, owner: str) -> HTTPException:
        """403 for a team token asking for another team's (`owner`'s) order."""
        return HTTPException(
            403,
            f"order {self.id} belongs to team {owner or '(none)'}: token "
            f"{self.principal.name!r} is for team {self.team}",
        )


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
Cookie = Annotated[str | None, Depends(session_cookie)]


def bearer_token(request: Request, credentials: Credentials, cookie: Cookie) -> str:
    """The request's token: its bearer header, or for a GET its session cookie; 401 when none."""
    if credentials is not None:
        return credentials.credentials
    if cookie and request.method in SAFE_METHODS:
        return cookie
    raise _unauthorized(MISSING)


def admitted(gate: Gate, admission: Admission | None) -> Principal:
    """Who the gate admitted; 401 for an unknown or revoked token, 429 past its rate limit."""
    if admission is None:
        raise _unauthorized("unknown or revoked bearer token")
    record, verdict = admission.record, admission.verdict
    if not verdict.allowed:
        limiter = gate.limiter
        raise HTTPException(
            429,
            f"token {record.name!r}: more than {limiter.limit} requests in "
            f"{limiter.window_s:g} s (FIREWATCH_API_RATE_LIMIT); retry in {verdict.retry_after} s",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    return Principal(record.name, record.parsed_role)


async def authenticate(
    api: State, request: Request, credentials: Credentials, cookie: Cookie
) -> Principal:
    token = bearer_token(request, credentials, cookie)
    return admitted(api.gate, await api.gate.admit(token, api.clock.now()))


Caller = Annotated[Principal, Depends(authenticate)]


def require(*kinds: RoleKind) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting tokens whose role is one of `kinds`, or admin; 403 otherwise."""
    allowed = sorted({"admin", *kinds})

    async def check(principal: Caller) -> Principal:
        return allow(principal, allowed)

    return check


def allow(principal: Principal, allowed: Sequence[str]) -> Principal:
    """`principal`, when its role's kind is one of `allowed`; 403 naming what is needed else."""
    if principal.role.kind not in allowed:
        raise HTTPException(
            403,
            f"token {principal.name!r} has role {principal.role}: this needs "
            f"{' or '.join('team:<id>' if k == 'team' else k for k in allowed)}",
        )
    return principal


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
    """A dependency admitting `kinds` (and admin) to read the order in the path; a team token
    only its own team's orders (403 for another team's; 404 when there is no such order)."""
    role_check = require(*kinds)

    def check(
        order_id: str,
        principal: Annotated[Principal, Depends(role_check)],
        linkage: LinkageDep,
    ) -> OrderRef:
        ref = OrderRef(order_id, principal)
        if ref.team is not None:
            order = linkage.store.get(order_id)  # OrderNotFound: 404
            if order.team != ref.team:
                raise ref.forbidden(order.team or "")
        return ref

    return check


@dataclass(frozen=True)
class OrderAct:
    """An ack or arrive asked of the order in the path with a bearer token, not yet checked:
    the route checks the token, counts it and makes the change (dispatches.py), for a field
    team's token known to this process in one script (gate.py: Gate.admit_and_apply)."""

    id: str
    token: str


async def order_act(order_id: str, credentials: Credentials) -> OrderAct:
    """The order and the token of an ack or arrive; 401 without a bearer token (a change never
    takes the session cookie). No I/O: the route's script checks the token."""
    if credentials is None:
        raise _unauthorized(MISSING)
    return OrderAct(order_id, credentials.credentials)


def order_change(*kinds: RoleKind) -> Callable[..., Awaitable[OrderRef]]:
    """A dependency admitting `kinds` (and admin) to change the order in the path. A team token's
    changes carry its team (OrderRef.team), and the transition script refuses another team's
    order before it changes anything (OrderForbidden: answer with `ref.forbidden`).

    It authenticates itself instead of depending on `require`, which depends on `authenticate`:
    each level of dependencies costs FastAPI tens of microseconds a request (close and the
    maintenance ack; ack and arrive take `order_act`). A route using it must not also use
    Caller or `require` (the request would be counted twice)."""
    allowed = sorted({"admin", *kinds})

    async def check(
        order_id: str, api: State, request: Request, credentials: Credentials
    ) -> OrderRef:
        # a change never takes the session cookie (see session_cookie), so it is not asked for
        principal = await authenticate(api, request, credentials, None)
        return OrderRef(order_id, allow(principal, allowed))

    return check
