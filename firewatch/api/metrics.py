"""GET /metrics: this process's Prometheus metrics (text format), and `RequestMetrics`, the pure
ASGI middleware that counts every request by route template, method and status.

/metrics takes no token, like /healthz: Prometheus scrapes it with no credentials to manage,
and a token would also be subject to the rate limit and show up in the counts it serves. It
holds aggregates only (counts per district and route, never an incident, order, device or token
id); expose the port only to the monitoring network if even per-district counts are not for
everyone. The OpenAPI document declares it as text/plain (Prometheus' text format 0.0.4).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from firewatch.metrics.api import UNMATCHED, ApiMetrics

router = APIRouter(tags=["metrics"])
EVENT_STREAM = b"text/event-stream"
# what generate_latest writes (prometheus_client's CONTENT_TYPE_LATEST says 1.0.0 since 0.22)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    summary="This process's Prometheus metrics, in text format 0.0.4 (no token: for scrapers)",
    response_class=PlainTextResponse,
)
async def metrics(request: Request) -> Response:
    api: ApiMetrics = request.app.state.metrics
    # in a thread: collectors may read Redis (the linkage queue's figures), synchronously
    body = await run_in_threadpool(generate_latest, api.registry)
    return Response(body, media_type=TEXT_FORMAT)


class RequestMetrics:
    """Counts each HTTP request when its response starts (an event stream may stay open for
    hours), labelled with the route's path template (`/v1/dispatches/{order_id}`: bounded, no
    ids), and times it to its last byte, or to its first for an event stream. A request that
    raises before any response is counted as the 500 the server then sends. Pure ASGI: Starlette's
    BaseHTTPMiddleware would add a task and a stream copy to every request."""

    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.timer = timer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = self.timer()
        method = scope["method"]
        started = streaming = False

        async def counting(message: Message) -> None:
            nonlocal started, streaming
            if message["type"] == "http.response.start" and not started:
                started = True
                route = _route(scope)
                self.metrics.answered(route, method, message["status"])
                streaming = _content_type(message).startswith(EVENT_STREAM)
                if streaming:
                    self.metrics.took(route, method, self.timer() - began)
            await send(message)

        try:
            await self.app(scope, receive, counting)
        except Exception:
            if not started:
                route = _route(scope)
                self.metrics.answered(route, method, 500)
                self.metrics.took(route, method, self.timer() - began)
            raise
        if started and not streaming:
            self.metrics.took(_route(scope), method, self.timer() - began)


def _route(scope: Scope) -> str:
    """The matched route's path template (set in the scope by the router), or `unmatched`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _content_type(message: Message) -> bytes:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value)
    return b""
