"""Maintenance orders: silent devices and blind cells (linkage/maintenance.py), for the monitoring
centre and the teams that fix them. A team acknowledges its own (someone is on it); an order
resolves itself when the device (or a watcher of the cell) reports again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from firewatch.api.auth import OrderRef, order_change, team_scope
from firewatch.api.deps import LinkageDep
from firewatch.api.errors import AUTH, responses
from firewatch.api.schemas import MaintenanceAckOut, MaintenanceList

router = APIRouter(prefix="/v1/maintenance", tags=["maintenance"])

Team = Annotated[str | None, Depends(team_scope)]
MAX_LIST = 1000


@router.get(
    "",
    summary="Open maintenance orders, newest first: devices silent for longer than their "
    "tolerance and cells no device watches; a team token gets its own",
    responses=responses(*AUTH),
)
def list_maintenance(
    team: Team,
    linkage: LinkageDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description="orders at most")] = 200,
) -> MaintenanceList:
    return MaintenanceList(team=team, orders=linkage.maintenance.open_orders(team, limit))


@router.post(
    "/{order_id}/ack",
    summary="Acknowledge an open maintenance order: someone is on it (a team token: its own "
    "only). It stays open until the device, or a watcher of the cell, reports again",
    responses=responses(*AUTH, 404, 409),
)
def ack_maintenance(
    ref: Annotated[OrderRef, Depends(order_change("team"))], linkage: LinkageDep
) -> MaintenanceAckOut:
    order, changed = linkage.ack_maintenance(ref.id, ref.principal.actor, ref.team)
    return MaintenanceAckOut(order=order, changed=changed)
