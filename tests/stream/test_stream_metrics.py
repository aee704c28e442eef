"""The worker's metrics without a broker: its stages count what they do on a registry of the
test's own; Faust's events through the sensor."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import orjson
from faust.types import TP
from prometheus_client import CollectorRegistry

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.metrics import EngineMetrics, StreamMetrics
from firewatch.model import EventKind
from firewatch.settings import Settings
from firewatch.stream.observe import StreamSensor, faust_lag
from firewatch.stream.stages import MARKER, Worker

from ..engine.conftest import T0, camera, sensor
from .test_worker_unit import BAD

NOW = T0 + timedelta(days=1)


def _worker(make_engine: Callable[..., Engine], registry: CollectorRegistry) -> Worker:
    settings = Settings.from_env(os.environ, kafka_partitions=1)
    return Worker(
        settings, make_engine, FakeClock(NOW), quiet_after=10, metrics=EngineMetrics(registry)
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_both_stages_count_what_they_do(make_engine: Callable[..., Engine]) -> None:
    registry = CollectorRegistry()
    worker = _worker(make_engine, registry)
    good = [orjson.dumps(camera("c", 0, 0.9)), orjson.dumps(sensor("s", 30, temp=20))]
    outside = orjson.dumps({**camera("far", 2, 0.9), "lat": 10.0})
    out, dead = worker.locate(0, [*(v for v, _ in BAD), *good, outside], list(range(7)))
    assert len(dead) == len(BAD)
    rejects = "firewatch_ingest_rejects_total"
    assert value(registry, rejects, reason="malformed_json") == 2
    assert value(registry, rejects, reason="bad_coordinate") == 1
    assert value(registry, rejects, reason="missing_field") == 1
    d = "firewatch_engine_detections_total"
    assert value(registry, d, source="camera", outcome="outside") == 1  # routed nowhere
    count = "firewatch_engine_batch_duration_seconds_count"
    assert (value(registry, count, stage="validate"), value(registry, count, stage="locate")) == (
        1,
        1,
    )
    # the incidents stage: the located records and a progress marker that releases the camera
    events, _ = worker.incidents(0, [*out, (MARKER, worker.marker() or b"")], lambda r: None)
    assert [e.event for e in events] == [EventKind.OPENED]
    assert value(registry, d, source="camera", outcome="incident") == 1
    assert value(registry, d, source="sensor", outcome="ignored") == 1
    assert value(registry, d, source="camera", outcome="outside") == 1  # not counted twice
    located = "firewatch_engine_located_total"
    assert value(registry, located, source="camera", district="test") == 1
    assert value(registry, located, source="sensor", district="test") == 1
    assert value(registry, "firewatch_engine_open_incidents") == 1
    # the worker's clock is a day after the camera's event time
    latency = "firewatch_engine_event_latency_seconds_sum"
    assert value(registry, latency, event="opened") == 86400
    assert value(registry, count, stage="validate") == 1  # locate's only: validated once
    assert value(registry, count, stage="incidents") == 1


def test_a_successor_counts_from_the_saved_state_on_and_drops_what_moved_away(
    make_engine: Callable[..., Engine],
) -> None:
    first = _worker(make_engine, CollectorRegistry())
    out, _ = first.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    _, touched = first.incidents(0, out, lambda r: None)
    saved = {region: blob for region, (_, blob) in first.states(touched).items()}
    registry = CollectorRegistry()
    successor = _worker(make_engine, registry)
    records = [camera("c2", 1, 0.9, east_km=0.2), sensor("s", 30, temp=20)]
    later, _ = successor.locate(0, [orjson.dumps(r) for r in records], [1, 2])
    marker = (MARKER, successor.marker() or b"")
    successor.incidents(0, [*later, marker], saved.get)
    d = "firewatch_engine_detections_total"
    assert value(registry, d, source="camera", outcome="incident") == 1  # c2, not c again
    assert value(registry, "firewatch_engine_open_incidents") == 1  # c and c2: one fire
    successor.forget({0})  # the partition moved to another worker: its incidents are its
    assert value(registry, "firewatch_engine_open_incidents") == 0


def test_faust_s_rebalances_and_commits_reach_the_metrics() -> None:
    registry = CollectorRegistry()
    ticks = iter([10.0, 10.25])
    sensor_ = StreamSensor(StreamMetrics(registry), seconds=lambda: next(ticks))
    state = sensor_.on_commit_initiated(consumer=None)
    sensor_.on_commit_completed(consumer=None, state=state)
    sensor_.on_rebalance_start(app=None)
    sensor_.on_send_error(producer=None, exc=RuntimeError("broker away"), state=None)
    assert value(registry, "firewatch_stream_commit_latency_seconds_sum") == 0.25
    assert value(registry, "firewatch_stream_commit_latency_seconds_count") == 1
    assert value(registry, "firewatch_stream_rebalances_total") == 1
    assert value(registry, "firewatch_kafka_errors_total", operation="send") == 1


class _FaustConsumer:
    """What faust_lag asks of a Faust app's consumer: its assignment, the partitions' end
    offsets and its positions."""

    def __init__(self, ends: dict[TP, int], positions: dict[TP, int]) -> None:
        self.ends = ends
        self.positions = positions

    def assignment(self) -> set[TP]:
        return set(self.ends)

    async def highwaters(self, *partitions: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in partitions}

    async def position(self, tp: TP) -> int:
        return self.positions[tp]


def test_the_incidents_stage_s_lag_is_its_consumer_s_on_the_located_topic() -> None:
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    located, changelog = TP("located", 0), TP("engine-state-changelog", 0)
    app = SimpleNamespace(
        consumer=_FaustConsumer({located: 120, changelog: 9}, {located: 100, changelog: 9})
    )
    asyncio.run(faust_lag(app, "located", metrics))  # type: ignore[arg-type]
    lag = "firewatch_kafka_consumer_lag_messages"
    assert value(registry, lag, topic="located", partition="0") == 20
    assert value(registry, lag, topic="engine-state-changelog", partition="0") is None
