"""Dispatch orders: a team's open orders (or every team's: the dispatch board), one order and
its log, and the field teams' transitions (ack, arrive, close), through the same Linkage methods
as `firewatch dispatch`, recording who acted (`by`: the token's team, or its role and name)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from firewatch.api.auth import OrderRef, order_scope, team_scope
from firewatch.api.deps import LinkageDep
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import CloseIn, OrderDetail, OrderList, TransitionOut
from firewatch.linkage.store import MAX_BOARD

router = APIRouter(prefix="/v1/dispatches", tags=["dispatches"])

Team = Annotated[str | None, Depends(team_scope)]
Readable = Annotated[OrderRef, Depends(order_scope("dashboard", "team"))]
Writable = Annotated[OrderRef, Depends(order_scope("team"))]
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


@router.post("/{order_id}/ack", summary="Acknowledge an order", responses=_CHANGE)
def ack(ref: Writable, linkage: LinkageDep) -> TransitionOut:
    order, changed = linkage.ack(ref.id, by=ref.principal.actor)
    return TransitionOut(order=order, changed=changed)


@router.post(
    "/{order_id}/arrive", summary="The team is on scene (acknowledges too)", responses=_CHANGE
)
def arrive(ref: Writable, linkage: LinkageDep) -> TransitionOut:
    order, changed = linkage.arrive(ref.id, by=ref.principal.actor)
    return TransitionOut(order=order, changed=changed)


@router.post(
    "/{order_id}/close",
    summary="Close an order with its outcome (a false alarm with a closed-loop cause masks it)",
    responses=responses(*AUTH, 400, 404, 409),  # 400: a body that is not JSON (FastAPI's own)
)
def close(ref: Writable, body: CloseIn, linkage: LinkageDep) -> TransitionOut:
    order, changed = linkage.close(
        ref.id, body.outcome, body.cause, body.note, by=ref.principal.actor
    )
    return TransitionOut(order=order, changed=changed)
