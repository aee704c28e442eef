"""Suppression masks: the list (the closed loop's false alarms and muted cells), muting a grid
cell for a while, and removing a mask.

A muted cell is a Mask (reason `muted`) whose geometry is the cell's polygon, from now for the
given minutes, named `mute-<grid_id>-<epoch seconds>`. It is stored as the closed loop's masks
are (fw:masks and a new fw:masks:version, `DispatchStore.add_mask`, with who muted it), so every
engine applies it: the API's own (EngineSink's MaskSync, before each batch) and the workers'
(the dispatcher's MaskPublisher and the masks topic). A mask covers detections by their event
time (observed_at), as every mask does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from firewatch.api.auth import Principal, require
from firewatch.api.deps import ClockDep, LinkageDep
from firewatch.api.errors import AUTH, responses
from firewatch.api.grid import LayerError, LayersDep
from firewatch.api.schemas import MaskList, MaskOut, MuteIn
from firewatch.linkage.store import MaskOrigin
from firewatch.rules.model import Mask, MaskReason

router = APIRouter(prefix="/v1/masks", tags=["masks"])

Reader = Annotated[Principal, Depends(require("dashboard"))]
Admin = Annotated[Principal, Depends(require())]
MUTE = "mute-"  # name prefix of a muted cell's mask

_MUTE = responses(*AUTH, 400, 404, 409, 500)
_MUTE[400] = {**_MUTE[400], "description": "The body is not JSON"}
_MUTE[404] = {**_MUTE[404], "description": "The grid has no such cell"}
_MUTE[409] = {**_MUTE[409], "description": "A mask of that name exists (a mute of the same cell "
              "in the same second): nothing changed"}  # fmt: skip
_MUTE[500] = {**_MUTE[500], "description": "The grid file cannot be read"}
_REMOVE = responses(*AUTH, 404)
_REMOVE[404] = {**_REMOVE[404], "description": "No such suppression mask"}


def mute_name(grid_id: str, at: datetime) -> str:
    return f"{MUTE}{grid_id}-{int(at.timestamp())}"


def muted_cell(mask: Mask) -> str | None:
    """The grid cell a mute masks (from its name); None for other masks."""
    if mask.reason is not MaskReason.MUTED or not mask.name.startswith(MUTE):
        return None
    return mask.name.removeprefix(MUTE).rpartition("-")[0] or None


def _out(mask: Mask, now: datetime, origin: MaskOrigin | None) -> MaskOut:
    return MaskOut(mask=mask, active=mask.active(now), grid_id=muted_cell(mask), origin=origin)


@router.get(
    "", summary="Every suppression mask, and whether it is active now", responses=responses(*AUTH)
)
def list_masks(_: Reader, linkage: LinkageDep, clock: ClockDep) -> MaskList:
    now = clock.now()
    origins = linkage.store.mask_origins()
    return MaskList(masks=[_out(m, now, origins.get(m.name)) for m in linkage.store.masks()])


@router.post(
    "",
    status_code=201,
    summary="Mute a grid cell for some minutes: its detections are suppressed until then",
    responses=_MUTE,
)
def mute(
    body: MuteIn, principal: Admin, linkage: LinkageDep, clock: ClockDep, layers: LayersDep
) -> MaskOut:
    try:
        geometry = layers.cell_geometry(body.grid_id)
    except LayerError as exc:
        raise HTTPException(500, str(exc)) from None
    if geometry is None:
        raise HTTPException(404, f"grid_id {body.grid_id!r}: the grid has no such cell")
    now = clock.now()
    mask = Mask(
        name=mute_name(body.grid_id, now),
        reason=MaskReason.MUTED,
        geometry=geometry,
        start=now,
        end=now + timedelta(minutes=body.minutes),
    )
    origin = MaskOrigin(by=principal.actor, at=now, note=body.note)
    if not linkage.store.add_mask(mask, origin):
        raise HTTPException(409, f"a suppression mask named {mask.name!r} exists: nothing changed")
    return _out(mask, now, origin)


@router.delete(
    "/{name}", summary="Remove a suppression mask (its engines stop applying it)", responses=_REMOVE
)
def remove(
    name: Annotated[str, Path(min_length=1, max_length=300)],
    _: Admin,
    linkage: LinkageDep,
    clock: ClockDep,
) -> MaskOut:
    masks = {m.name: m for m in linkage.store.masks()}
    origin = linkage.store.mask_origins().get(name)
    if name not in masks or not linkage.store.remove_mask(name):
        raise HTTPException(404, f"no suppression mask named {name!r}")
    return _out(masks[name], clock.now(), origin)
