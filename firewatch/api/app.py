"""The app factory: every handle injected, nothing global, so tests build apps on their own Redis
and clock. `firewatch api` builds one from the settings (server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from firewatch.api import (
    detections,
    dispatches,
    errors,
    grid,
    health,
    incidents,
    masks,
    pages,
    report,
    session,
    stream,
)
from firewatch.api.deps import ApiState
from firewatch.api.fanout import Hub
from firewatch.api.ingest import Intake
from firewatch.api.ratelimit import RateLimiter
from firewatch.api.ready import Probe, Readiness, redis_probe
from firewatch.api.tokens import TokenStore
from firewatch.clock import Clock
from firewatch.linkage.service import Linkage
from firewatch.settings import Settings

ROUTERS = (
    health.router,
    session.router,
    dispatches.router,
    report.router,
    detections.router,
    stream.router,
    incidents.router,
    masks.router,
    grid.router,
)


def create_app(
    settings: Settings,
    linkage: Linkage,
    clock: Clock,
    intake: Intake,
    *,
    probes: dict[str, Probe] | None = None,
) -> FastAPI:
    """The API on `linkage`'s Redis (which also holds the tokens and the rate counters).

    `intake` takes POST /v1/detections (ingest.py: the engine, or Kafka); `probes` are what
    /readyz asks (default: Redis alone). The intake and the change feed's reader (fanout.py)
    are started and stopped with the app."""
    client = linkage.store.r
    store = linkage.store
    hub = Hub(store.feed_since, store.feed_last_id, max_subscribers=settings.api_stream_max)
    state = ApiState(
        settings=settings,
        linkage=linkage,
        clock=clock,
        tokens=TokenStore(client),
        limiter=RateLimiter(client, settings.api_rate_limit, settings.api_rate_window),
        intake=intake,
        readiness=Readiness(
            probes if probes is not None else {"redis": redis_probe(client)},
            settings.api_ready_timeout,
        ),
        hub=hub,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await intake.start()
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await intake.stop()

    app = FastAPI(
        title="firewatch",
        summary="Forest-fire detections in; dispatch orders, their transitions and report out",
        version="1",
        lifespan=lifespan,
        # /openapi.json is the contract; no /docs or /redoc pages, which load their scripts from
        # a CDN (the dashboard will serve its own, vendored)
        docs_url=None,
        redoc_url=None,
    )
    app.state.firewatch = state
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    pages.install(app)  # the dashboard at /, its files at /static/
    _with_detection_schemas(app)
    return app


def _with_detection_schemas(app: FastAPI) -> None:
    """Add the detection models, which POST /v1/detections's body refers to, to the document's
    components (the route reads its body itself: JSON array or JSON lines)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(
            detections.DETECTION_SCHEMAS
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
