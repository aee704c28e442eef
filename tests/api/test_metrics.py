"""GET /metrics and the request counts: by route template, on the app's own registry, with the
intake's engine metrics beside them (as `firewatch api` wires them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from redis.backoff import NoBackoff

from firewatch.api.app import create_app
from firewatch.api.ingest import EngineSink, Intake
from firewatch.api.metrics import RequestMetrics
from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage.consumer import LinkageConsumer
from firewatch.linkage.service import Linkage
from firewatch.metrics import ApiMetrics, EngineMeter, EngineMetrics
from firewatch.rules import RuleSet
from firewatch.settings import Settings

from .conftest import Bearer
from .test_detections import camera, sensor

REQUESTS = "firewatch_api_requests_total"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metered(
    settings: Settings,
    linkage: Linkage,
    clock: FakeClock,
    engine: Engine,
    rules: RuleSet,
    registry: CollectorRegistry,
) -> Iterator[TestClient]:
    """The app as api/server.py builds it: the intake's engine counted on the app's registry."""
    engine_metrics = EngineMetrics(registry)
    consumer = LinkageConsumer(linkage, backoff=NoBackoff(), max_attempts=1)
    sink = EngineSink(engine, consumer, EngineMeter(engine_metrics, clock))
    intake = Intake(sink, rules.sources.max_future, metrics=engine_metrics)
    app = create_app(settings, linkage, clock, intake, registry=registry)
    with TestClient(app) as client:
        yield client


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_requests_are_counted_by_route_template_method_and_status(
    metered: TestClient, registry: CollectorRegistry, bearer: Bearer
) -> None:
    assert metered.get("/healthz").status_code == 200
    assert metered.get("/healthz").status_code == 200
    admin = bearer("admin")
    assert metered.get("/v1/dispatches/ord-0000000000000001", headers=admin).status_code == 404
    assert metered.get("/v1/dispatches/ord-0000000000000002", headers=admin).status_code == 404
    assert metered.get("/no/such/page").status_code == 404
    assert metered.request("BREW", "/healthz").status_code == 405
    assert value(registry, REQUESTS, route="/healthz", method="GET", status="200") == 2
    # one series for both orders: the template, never the id
    route = "/v1/dispatches/{order_id}"
    assert value(registry, REQUESTS, route=route, method="GET", status="404") == 2
    assert value(registry, REQUESTS, route="unmatched", method="GET", status="404") == 1
    assert value(registry, REQUESTS, route="/healthz", method="other", status="405") == 1
    count = "firewatch_api_request_duration_seconds_count"
    assert value(registry, count, route="/healthz", method="GET") == 2
    labels = {
        s.labels["route"] for f in registry.collect() for s in f.samples if s.name == REQUESTS
    }
    assert labels == {"/healthz", route, "unmatched"}


def test_metrics_need_no_token_and_are_prometheus_text(
    metered: TestClient, registry: CollectorRegistry
) -> None:
    metered.get("/healthz")
    answer = metered.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = answer.text.splitlines()
    assert 'firewatch_api_requests_total{method="GET",route="/healthz",status="200"} 1.0' in lines
    assert 'firewatch_ingest_rejects_total{reason="malformed_json"} 0.0' in lines
    assert "firewatch_api_stream_subscribers 0.0" in lines
    # this scrape is counted once it has answered
    assert value(registry, REQUESTS, route="/metrics", method="GET", status="200") == 1


def test_detections_posted_are_counted_with_their_rejects_and_latency(
    metered: TestClient, registry: CollectorRegistry, bearer: Bearer, clock: FakeClock
) -> None:
    now = clock.now()
    records = [
        camera(now - timedelta(minutes=20)),  # a confident flame, 20 minutes ago
        {"source": "camera", "device_id": "c"},  # missing fields
        sensor(now),  # moves event time on: the flame is past the grace period (10 min)
    ]
    answer = metered.post("/v1/detections", json=records, headers=bearer("ingest"))
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    assert value(registry, "firewatch_ingest_rejects_total", reason="missing_field") == 1
    d = "firewatch_engine_detections_total"
    assert value(registry, d, source="camera", outcome="incident") == 1
    assert value(registry, d, source="sensor", outcome="ignored") == 1
    assert value(registry, "firewatch_engine_located_total", source="camera", district="test") == 1
    opened = "firewatch_engine_incident_events_total"
    assert (
        sum(
            value(registry, opened, event="opened", severity=s) or 0
            for s in ("low", "moderate", "high", "critical")
        )
        == 1
    )
    # emitted by the API's clock 20 minutes after the flame was observed
    latency = "firewatch_engine_event_latency_seconds_sum"
    assert value(registry, latency, event="opened") == 1200
    assert value(registry, "firewatch_engine_batch_duration_seconds_count", stage="validate") == 1
    assert value(registry, "firewatch_engine_open_incidents") == 1


def test_stream_subscribers_are_the_hub_s(metered: TestClient, registry: CollectorRegistry) -> None:
    hub = metered.app.state.firewatch.hub  # type: ignore[attr-defined]
    first, second = hub.join(), hub.join()
    assert value(registry, "firewatch_api_stream_subscribers") == 2
    first.leave()
    second.leave()
    assert value(registry, "firewatch_api_stream_subscribers") == 0


class _Timer:
    """A monotonic timer the fake apps below move on."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _call(app: Any, timer: _Timer | None = None) -> ApiMetrics:
    """One GET through RequestMetrics around `app`."""
    metrics = ApiMetrics(CollectorRegistry())
    middleware = RequestMetrics(app, metrics, timer=timer or _Timer())
    scope = {"type": "http", "method": "GET", "route": _Route("/v1/x/{id}")}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def run() -> None:
        with contextlib.suppress(RuntimeError):  # the broken app's, after it was counted
            await middleware(scope, receive, send)

    asyncio.run(run())
    return metrics


class _Route:
    def __init__(self, path: str) -> None:
        self.path = path


def _seconds(metrics: ApiMetrics) -> float | None:
    labels = {"route": "/v1/x/{id}", "method": "GET"}
    return metrics.registry.get_sample_value("firewatch_api_request_duration_seconds_sum", labels)


def test_an_event_stream_is_timed_to_its_first_byte_and_others_to_their_last() -> None:
    def app(content_type: bytes, timer: _Timer) -> Any:
        """A response whose start goes out 1 s after the request, then a byte a second."""

        async def respond(scope: Any, receive: Any, send: Any) -> None:
            timer.now += 1
            headers = [(b"content-type", content_type)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for _ in range(5):
                timer.now += 1
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
            timer.now += 1
            await send({"type": "http.response.body", "body": b""})

        return respond

    sse, json = _Timer(), _Timer()
    assert _seconds(_call(app(b"text/event-stream; charset=utf-8", sse), sse)) == 1
    assert _seconds(_call(app(b"application/json", json), json)) == 7


def test_a_request_that_raises_before_answering_is_counted_as_a_500() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    metrics = _call(broken)
    labels = {"route": "/v1/x/{id}", "method": "GET", "status": "500"}
    assert metrics.registry.get_sample_value(REQUESTS, labels) == 1
