"""Prometheus metrics. Every metric is built on an injected CollectorRegistry (never the global
default one), so each process, and each test, has its own.

    engine.py    detections, rejects, stage durations, incident events: EngineMetrics, and
                 EngineMeter, which the edges running an engine update after each batch
    stream.py    Kafka consumer lag, errors, rebalances, commit latency (worker, dispatcher)
    linkage.py   the linkage queue from Redis at each scrape (LinkageCollector); escalations
                 and Redis errors and retries as they happen (LinkageMetrics)
    api.py       HTTP requests and durations by route, event-stream subscribers
    expose.py    snapshots (--metrics-out), the HTTP server of --metrics-port, and every name
                 firewatch exports (EXPORTED, exported_series())

Which process exports what: README.md, "Metrics". The engine imports none of this.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, disable_created_metrics

from firewatch.metrics.api import ApiMetrics
from firewatch.metrics.engine import EngineMeter, EngineMetrics
from firewatch.metrics.expose import (
    MetricsServer,
    exported_names,
    exported_series,
    serve,
    snapshot,
    write_snapshot,
)
from firewatch.metrics.linkage import LinkageCollector, LinkageMetrics
from firewatch.metrics.stream import StreamMetrics

# No `<name>_created` series beside every counter and histogram: nothing here reads them, and
# they would double the series a scrape holds (a process-wide switch of prometheus_client's).
disable_created_metrics()  # type: ignore[no-untyped-call]

EXPORTED: frozenset[str] = exported_names()  # the names as the README lists them

__all__ = [
    "EXPORTED",
    "ApiMetrics",
    "CollectorRegistry",
    "EngineMeter",
    "EngineMetrics",
    "LinkageCollector",
    "LinkageMetrics",
    "MetricsServer",
    "StreamMetrics",
    "exported_names",
    "exported_series",
    "serve",
    "snapshot",
    "write_snapshot",
]
