"""The app factory: every handle injected, nothing global, so tests build apps on their own Redis
and clock. `firewatch api` builds one from the settings (server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from firewatch.api import (
    detections,
    dispatches,
    errors,
    grid,
    health,
    incidents,
    maintenance,
    masks,
    metrics,
    pages,
    report,
    session,
    stream,
)
from firewatch.api.deps import ApiState
from firewatch.api.fanout import Hub
from firewatch.api.gate import Gate
from firewatch.api.ingest import Intake
from firewatch.api.metrics import RequestMetrics
from firewatch.api.ratelimit import RateLimiter
from firewatch.api.ready import Probe, Readiness, redis_probe
from firewatch.api.tokens import TokenStore
from firewatch.clock import Clock
from firewatch.linkage import feed
from firewatch.linkage.server import async_twin
from firewatch.linkage.service import Linkage
from firewatch.linkage.transitions import AsyncTransitions
from firewatch.metrics import ApiMetrics
from firewatch.settings import Settings

ROUTERS = (
    health.router,
    session.router,
    dispatches.router,
    report.router,
    detections.router,
    stream.router,
    incidents.router,
    maintenance.router,
    masks.router,
    grid.router,
    metrics.router,
)


def create_app(
    settings: Settings,
    linkage: Linkage,
    clock: Clock,
    intake: Intake,
    *,
    probes: dict[str, Probe] | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The API on `linkage`'s Redis (which also holds the tokens and the rate counters).

    `intake` takes POST /v1/detections (ingest.py: the engine, or Kafka); `probes` are what
    /readyz asks (default: Redis alone). The intake and the change feed's reader (fanout.py)
    are started and stopped with the app. `registry`: where the API's metrics go, beside what
    the caller put there (the intake's engine, the linkage queue's figures), all served at
    GET /metrics (a registry of its own by default); `app.state.metrics` is the ApiMetrics."""
    client = linkage.store.r
    store = linkage.store
    aclient = async_twin(client)  # the hot paths (the gate, ack and arrive, the change feed)
    hub = Hub(
        partial(feed.asince, aclient, maxlen=store.feed_maxlen),
        partial(feed.alast_id, aclient),
        max_subscribers=settings.api_stream_max,
        follow=partial(feed.afollow, aclient),
    )
    state = ApiState(
        settings=settings,
        linkage=linkage,
        clock=clock,
        transitions=AsyncTransitions(aclient, store.meta_json),
        tokens=TokenStore(client),
        gate=Gate(aclient, RateLimiter(settings.api_rate_limit, settings.api_rate_window)),
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
            await aclient.aclose()

    app = FastAPI(
        title="firewatch",
        summary="Forest-fire detections in; dispatch orders, their transitions and report out",
        version="1",
        lifespan=lifespan,
        # /openapi.json is the contract; no /docs or /redoc pages, which load their scripts from
        # a CDN (the dashboard will serve its own, vendored)
        docs_url=None,
        redoc_url=None,
        # its metrics are Prometheus's (metrics.py), not OpenTelemetry's: FastAPI's own
        # instrumentation (0.135 and later) off, which also spares each request its check
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.firewatch = state
    app.state.metrics = api_metrics = ApiMetrics(
        registry if registry is not None else CollectorRegistry(),
        subscribers=lambda: hub.subscribers,
    )
    app.add_middleware(RequestMetrics, metrics=api_metrics)
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
