"""GET /healthz (the process is up) and GET /readyz (its dependencies answer). No token: for
load balancers and supervisors."""

from __future__ import annotations

from fastapi import APIRouter, Response

from firewatch.api.deps import State
from firewatch.api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> HealthOut:  # no I/O: on the event loop, not a thread-pool hop
    return HealthOut()


@router.get(
    "/readyz",
    summary="Redis answers (and the Kafka broker, when detections go there)",
    responses={503: {"model": ReadyOut, "description": "Something is down: `checks` says what"}},
)
async def readyz(api: State, response: Response) -> ReadyOut:
    checks = await api.readiness.check()
    ready = all(c.ok for c in checks)
    if not ready:
        response.status_code = 503
    return ReadyOut(ready=ready, checks=checks)
