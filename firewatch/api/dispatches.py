"""Dispatch orders: a team's open orders (or every team's: the dispatch board), one order and
its log, and the field teams' transitions (ack, arrive, close), through the same transition
script as `firewatch dispatch` (linkage/transitions.py), recording who acted (`by`: the token's
team, or its role and name).

Ack and arrive go out on the API's asyncio client, one round trip for a team's token (the team
check is in the script); close, whose false alarms may make a suppression mask from the order's
place, goes through Linkage.close in the thread pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from firewatch.api.auth import OrderRef, order_change, order_scope, team_scope
from firewatch.api.deps import LinkageDep, State
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import CloseIn, OrderDetail, OrderList, TransitionOut
from firewatch.linkage.model import Action
from firewatch.linkage.store import MAX_BOARD
from firewatch.linkage.transitions import OrderForbidden

router = APIRouter(prefix="/v1/dispatches", tags=["dispatches"])

Team = Annotated[str | None, Depends(team_scope)]
Readable = Annotated[OrderRef, Depends(order_scope("dashboard", "team"))]
Writable = Annotated[OrderRef, Depends(order_change("team"))]
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


async def _move(api: State, ref: OrderRef, action: Action) -> TransitionOut:
    try:
        order, changed = await api.transitions.move(
            ref.id, action, api.clock.now(), ref.principal.actor, ref.team
        )
    except OrderForbidden as exc:
        raise ref.forbidden(exc.owner) from None
    return TransitionOut(order=order, changed=changed)


@router.post("/{order_id}/ack", summary="Acknowledge an order", responses=_CHANGE)
async def ack(ref: Writable, api: State) -> TransitionOut:
    return await _move(api, ref, Action.ACK)


@router.post(
    "/{order_id}/arrive", summary="The team is on scene (acknowledges too)", responses=_CHANGE
)
async def arrive(ref: Writable, api: State) -> TransitionOut:
    return await _move(api, ref, Action.ARRIVE)


@router.post(
    "/{order_id}/close",
    summary="Close an order with its outcome (a false alarm with a closed-loop cause masks it)",
    responses=responses(*AUTH, 400, 404, 409),  # 400: a body that is not JSON (FastAPI's own)
)
def close(ref: Writable, body: CloseIn, linkage: LinkageDep) -> TransitionOut:
    try:
        order, changed = linkage.close(
            ref.id, body.outcome, body.cause, body.note, by=ref.principal.actor, team=ref.team
        )
    except OrderForbidden as exc:
        raise ref.forbidden(exc.owner) from None
    return TransitionOut(order=order, changed=changed)
