"""Dispatch orders: a team's open orders (or every team's: the dispatch board), one order and
its log, and the field teams' transitions (ack, arrive, close), through the same transition
script as `firewatch dispatch` (linkage/transitions.py), recording who acted (`by`: the token's
team, or its role and name).

Ack and arrive go out on the API's asyncio client: for a team's token this process has seen,
one round trip that checks the token, counts it against its rate limit and makes the change
(gate.py), the team check being in the transition script; close, whose false alarms may make a
suppression mask from the order's place, goes through Linkage.close in the thread pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from firewatch.api.auth import (
    OrderAct,
    OrderRef,
    Principal,
    admitted,
    allow,
    order_act,
    order_change,
    order_scope,
    team_scope,
)
from firewatch.api.deps import LinkageDep, state_of
from firewatch.api.errors import AUTH, responses
from firewatch.api.gate import Stale
from firewatch.api.schemas import CloseIn, OrderDetail, OrderList, TransitionOut
from firewatch.linkage.model import Action
from firewatch.linkage.store import MAX_BOARD
from firewatch.linkage.transitions import OrderForbidden, Transition

router = APIRouter(prefix="/v1/dispatches", tags=["dispatches"])

Team = Annotated[str | None, Depends(team_scope)]
Readable = Annotated[OrderRef, Depends(order_scope("dashboard", "team"))]
Writable = Annotated[OrderRef, Depends(order_change("team"))]
Acting = Annotated[OrderAct, Depends(order_act)]  # ack, arrive: checked by _move
CHANGERS = ("admin", "team")
_ONE = responses(*AUTH, 404)
_CHANGE = responses(*AUTH, 404, 409)


@router.get(
    "",
    summary="A team's open orders (oldest first); without `team`, for the dashboard and admin, "
    "every team's (newest first, at most `limit`)",
    responses=responses(*AUTH),
)
def list_orders(
    team: Team,
    linkage: LinkageDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_BOARD, description="orders of the board at most (not a team's)")
    ] = 200,
) -> OrderList:
    if team is not None:
        return OrderList(team=team, orders=linkage.store.open_orders(team))
    return OrderList(team=None, orders=linkage.store.board(limit))


@router.get("/{order_id}", summary="An order and its timestamped log", responses=_ONE)
def show_order(ref: Readable, linkage: LinkageDep) -> OrderDetail:
    return OrderDetail(order=linkage.store.get(ref.id), log=linkage.store.log(ref.id))


async def _move(request: Request, act: OrderAct, action: Action) -> TransitionOut:
    """Ack or arrive: a team token this process knows is checked, counted and moved in one
    script; any other token (or one whose record changed) is checked first, then moved."""
    api = state_of(request)
    now = api.clock.now()
    record = api.gate.known(act.token)
    if record is not None and record.parsed_role.team is not None:
        ref = OrderRef(act.id, Principal(record.name, record.parsed_role))
        t = Transition.of_team(ref.id, action, now, ref.principal.actor, record.parsed_role.team)
        try:
            admission, reply = await api.gate.admit_and_apply(
                act.token, now, t, api.transitions.meta_json
            )
        except Stale:
            pass  # revoked or replaced: the gate alone says what the token is now
        else:
            admitted(api.gate, admission)  # 401, 429: nothing was changed
            assert reply is not None  # admitted within its limit: the transition ran
            with _own_team_only(ref):
                order, changed = t.outcome(reply)
            return TransitionOut(order=order, changed=changed)
    principal = admitted(api.gate, await api.gate.admit(act.token, now))
    ref = OrderRef(act.id, allow(principal, CHANGERS))
    with _own_team_only(ref):
        order, changed = await api.transitions.move(ref.id, action, now, principal.actor, ref.team)
    return TransitionOut(order=order, changed=changed)


@contextmanager
def _own_team_only(ref: OrderRef) -> Iterator[None]:
    """Another team's order (the transition script refused it: nothing changed) answers 403."""
    try:
        yield
    except OrderForbidden as exc:
        raise ref.forbidden(exc.owner) from None


@router.post("/{order_id}/ack", summary="Acknowledge an order", responses=_CHANGE)
async def ack(act: Acting, request: Request) -> TransitionOut:
    return await _move(request, act, Action.ACK)


@router.post(
    "/{order_id}/arrive", summary="The team is on scene (acknowledges too)", responses=_CHANGE
)
async def arrive(act: Acting, request: Request) -> TransitionOut:
    return await _move(request, act, Action.ARRIVE)


@router.post(
    "/{order_id}/close",
    summary="Close an order with its outcome (a false alarm with a closed-loop cause masks it)",
    responses=responses(*AUTH, 400, 404, 409),  # 400: a body that is not JSON (FastAPI's own)
)
def close(ref: Writable, body: CloseIn, linkage: LinkageDep) -> TransitionOut:
    with _own_team_only(ref):
        order, changed = linkage.close(
            ref.id, body.outcome, body.cause, body.note, by=ref.principal.actor, team=ref.team
        )
    return TransitionOut(order=order, changed=changed)
