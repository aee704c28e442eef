"""The handles routes depend on, injected through FastAPI's `Depends`: no module globals.

Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` in its thread pool, and
each such hop cost more than the work (benchmarks/README.md, API: the ack route).

`create_app` puts one ApiState on `app.state.firewatch`; routes ask for what they use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request

from firewatch.api.fanout import Hub
from firewatch.api.gate import Gate
from firewatch.api.ingest import Intake
from firewatch.api.ready import Readiness
from firewatch.api.tokens import TokenStore
from firewatch.clock import Clock
from firewatch.linkage.service import Linkage
from firewatch.linkage.transitions import AsyncTransitions
from firewatch.settings import Settings


@dataclass(frozen=True)
class ApiState:
    settings: Settings
    linkage: Linkage
    transitions: AsyncTransitions  # ack and arrive on the asyncio client
    clock: Clock
    tokens: TokenStore
    gate: Gate  # finds a request's token and counts it against its rate limit
    intake: Intake
    readiness: Readiness
    hub: Hub  # the change feed's one reader, fanned out to GET /v1/stream


def state_of(request: Request) -> ApiState:
    return cast(ApiState, request.app.state.firewatch)


async def get_state(request: Request) -> ApiState:
    return state_of(request)


State = Annotated[ApiState, Depends(get_state)]


async def get_linkage(api: State) -> Linkage:
    return api.linkage


async def get_clock(api: State) -> Clock:
    return api.clock


async def get_intake(api: State) -> Intake:
    return api.intake


LinkageDep = Annotated[Linkage, Depends(get_linkage)]
ClockDep = Annotated[Clock, Depends(get_clock)]
IntakeDep = Annotated[Intake, Depends(get_intake)]
