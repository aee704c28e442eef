"""HTTP API metrics: requests by route template, their durations, event-stream subscribers.
The API counts them (firewatch/api/metrics.py: a pure ASGI middleware, and GET /metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)


class ApiMetrics:
    """The API's metrics on `registry`, which `GET /metrics` serves (with whatever else the
    process registered there: the engine's, the linkage queue's)."""

    def __init__(
        self, registry: CollectorRegistry, subscribers: Callable[[], float] | None = None
    ) -> None:
        self.registry = registry
        self.requests = Counter(
            "firewatch_api_requests_total",
            "HTTP requests answered, by route template (`unmatched`: no route), method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "firewatch_api_request_duration_seconds",
            "Seconds from a request to its last byte; for event streams (text/event-stream), to "
            "the response's first byte",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.subscribers = Gauge(
            "firewatch_api_stream_subscribers",
            "Clients of GET /v1/stream (the change feed as server-sent events) this process serves",
            registry=registry,
        )
        if subscribers is not None:
            self.subscribers.set_function(subscribers)

    def answered(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, _method(method), str(status)).inc()

    def took(self, route: str, method: str, seconds: float) -> None:
        self.duration.labels(route, _method(method)).observe(seconds)


def _method(method: str) -> str:
    """Methods as they are, but a client's made-up ones as `other` (labels stay bounded)."""
    return method if method in METHODS else "other"
