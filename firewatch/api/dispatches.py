"""Dispatch orders: a team's open orders, one order and its log, and the field teams'
transitions (ack, arrive, close), through the same Linkage methods as `firewatch dispatch`,
recording who acted (`by`: the token's team, or its role and name)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from firewatch.api.auth import OrderRef, order_scope, team_scope
from firewatch.api.deps import LinkageDep
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import CloseIn, OrderDetail, OrderList, TransitionOut

router = APIRouter(prefix="/v1/dispatches", tags=["dispatches"])

Team = Annotated[str, Depends(team_scope)]
Readable = Annotated[OrderRef, Depends(order_scope("dashboard", "team"))]
Writable = Annotated[OrderRef, Depends(order_scope("team"))]
_ONE = responses(*AUTH, 404)
_CHANGE = responses(*AUTH, 404, 409)


@router.get("", summary="A team's open orders", responses=responses(*AUTH, 400))
def list_orders(team: Team, linkage: LinkageDep) -> OrderList:
    return OrderList(team=team, orders=linkage.store.open_orders(team))


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
    responses=_CHANGE,
)
def close(ref: Writable, body: CloseIn, linkage: LinkageDep) -> TransitionOut:
    order, changed = linkage.close(
        ref.id, body.outcome, body.cause, body.note, by=ref.principal.actor
    )
    return TransitionOut(order=order, changed=changed)
