"""Linkage metrics after known orders on a real redis-server: the figures come from Redis (the
aggregates the order scripts keep, the order indexes), read at each scrape."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry
from redis.backoff import NoBackoff

from firewatch.clock import FakeClock
from firewatch.linkage.consumer import LinkageConsumer
from firewatch.linkage.model import Resolution
from firewatch.linkage.service import Linkage
from firewatch.metrics import LinkageCollector, LinkageMetrics, exported_series
from firewatch.rules import load_rules

from ..linkage.conftest import T0, event, oid
from ..redis_fixtures import RedisFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def linkage(redis_client: redis.Redis, clock: FakeClock) -> Linkage:
    routing = load_rules(ROOT / "rules").routing
    assert routing is not None
    return Linkage(redis_client, routing, clock)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_orders_rates_and_durations_come_from_redis(linkage: Linkage, clock: FakeClock) -> None:
    """Four warnings (two in D1, two in D2), each 200 s after its first detection; three are
    acknowledged, two reach the scene, one is closed, one stays pending past its SLA."""
    registry = CollectorRegistry()
    faults = LinkageMetrics(registry)
    registry.register(LinkageCollector(linkage.store.r, clock, faults))
    consumer = LinkageConsumer(linkage, observer=faults)
    consumer.deliver(
        [
            event(n=n, district=d, first_seen=T0 - timedelta(seconds=200))
            for n, d in ((1, "D1"), (2, "D1"), (3, "D2"), (4, "D2"))
        ]
    )
    clock.advance(seconds=90)
    linkage.ack(oid(1), by="team:team-A")
    clock.set(T0 + timedelta(seconds=250))
    linkage.ack(oid(2))
    linkage.ack(oid(3))
    clock.set(T0 + timedelta(seconds=400))
    linkage.arrive(oid(1))
    linkage.arrive(oid(3))
    clock.set(T0 + timedelta(seconds=1000))  # past order 4's SLA (10 min)
    linkage.close(oid(1), Resolution.EXTINGUISHED)

    orders = "firewatch_linkage_orders"
    states = ("pending", "acknowledged", "on_scene", "closed")
    assert [value(registry, orders, state=s) for s in states] == [1, 1, 1, 1]
    assert value(registry, "firewatch_linkage_overdue_orders") == 1
    assert value(registry, "firewatch_linkage_read_ok") == 1
    for name, d1, d2 in (("warnings", 2, 2), ("responses", 2, 1), ("closures", 1, 0)):
        metric = f"firewatch_linkage_{name}_total"
        assert (value(registry, metric, district="D1"), value(registry, metric, district="D2")) == (
            d1,
            d2,
        ), name
    response = "firewatch_linkage_response_ratio"
    assert value(registry, response, district="") == 0.75
    assert (value(registry, response, district="D1"), value(registry, response, district="D2")) == (
        1.0,
        0.5,
    )
    assert value(registry, "firewatch_linkage_closure_ratio", district="") == 0.25
    # durations, in the aggregates' bins: acks at 90 s and 250 s (twice), arrivals at 400 s,
    # the close at 1000 s, every order 200 s after its incident's first detection
    ack = "firewatch_linkage_time_to_ack_seconds_bucket"
    assert [value(registry, ack, le=le) for le in ("60.0", "120.0", "180.0", "300.0", "+Inf")] == [
        0,
        1,
        1,
        3,
        3,
    ]
    assert value(registry, "firewatch_linkage_time_to_ack_seconds_count") == 3
    assert value(registry, "firewatch_linkage_time_to_ack_seconds_sum") is None  # none kept
    scene = "firewatch_linkage_time_to_scene_seconds_bucket"
    assert (value(registry, scene, le="300.0"), value(registry, scene, le="450.0")) == (0, 2)
    close = "firewatch_linkage_time_to_close_seconds_bucket"
    assert (value(registry, close, le="900.0"), value(registry, close, le="1200.0")) == (0, 1)
    dispatch = "firewatch_linkage_detection_to_dispatch_seconds_bucket"
    assert (value(registry, dispatch, le="180.0"), value(registry, dispatch, le="300.0")) == (0, 4)

    done = consumer.escalate()  # order 4, from its team to its village
    assert done == [(oid(4), "village:V1")]
    assert value(registry, "firewatch_linkage_escalations_total", level="village") == 1
    assert value(registry, "firewatch_linkage_overdue_orders") == 0  # its deadline moved on
    assert value(registry, "firewatch_redis_errors_total", operation="deliver") == 0


def test_a_scrape_with_redis_away_answers_without_the_linkage_series(
    redis_factory: RedisFactory, clock: FakeClock
) -> None:
    server = redis_factory()
    routing = load_rules(ROOT / "rules").routing
    assert routing is not None
    client = server.client()
    linkage = Linkage(client, routing, clock)
    registry, counted = CollectorRegistry(), CollectorRegistry()  # a read of `counted`: no scrape
    faults = LinkageMetrics(counted)
    registry.register(LinkageCollector(client, clock, faults))
    linkage.consume([event(n=1)])
    assert value(registry, "firewatch_linkage_orders", state="pending") == 1
    server.kill()
    scrape = {s.name: s.value for family in registry.collect() for s in family.samples}
    assert scrape == {"firewatch_linkage_read_ok": 0}
    assert value(counted, "firewatch_redis_errors_total", operation="metrics") == 1
    client.close()


def test_a_consumer_counts_each_failed_call_and_each_retry(
    linkage: Linkage, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    faults = LinkageMetrics(registry)
    consumer = LinkageConsumer(linkage, backoff=NoBackoff(), max_attempts=3, observer=faults)
    calls = 0

    def down(events: object) -> None:
        nonlocal calls
        calls += 1
        raise redis.ConnectionError("connection refused (test)")

    monkeypatch.setattr(linkage, "consume", down)
    with pytest.raises(redis.ConnectionError):
        consumer.deliver([event(n=1)])
    assert calls == 3
    # three failures, two of them retried: the third was the last attempt
    assert value(registry, "firewatch_redis_errors_total", operation="deliver") == 3
    assert value(registry, "firewatch_redis_retries_total", operation="deliver") == 2


def test_the_series_a_scrape_names_are_all_in_the_exported_list(linkage: Linkage) -> None:
    registry = CollectorRegistry()
    registry.register(LinkageCollector(linkage.store.r, linkage.clock, LinkageMetrics(registry)))
    linkage.consume([event(n=1, district="D1")])
    names = {s.name for family in registry.collect() for s in family.samples}
    assert names <= exported_series()
    assert "firewatch_linkage_time_to_ack_seconds_bucket" in names
