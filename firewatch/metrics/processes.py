"""Each long-running process's set of metrics, on a registry of its own, served on the settings'
metrics port (`--metrics-port`, FIREWATCH_METRICS_PORT); None when no port is set."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from firewatch.linkage.service import Linkage
from firewatch.metrics.engine import EngineMetrics
from firewatch.metrics.expose import MetricsServer, serve
from firewatch.metrics.linkage import LinkageCollector, LinkageMetrics
from firewatch.metrics.stream import StreamMetrics
from firewatch.settings import Settings


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry
    engine: EngineMetrics
    stream: StreamMetrics
    server: MetricsServer


@dataclass
class DispatcherMetrics:
    registry: CollectorRegistry
    stream: StreamMetrics
    linkage: LinkageMetrics  # and the LinkageCollector on the registry: the queue from Redis
    server: MetricsServer


def serve_worker(settings: Settings) -> WorkerMetrics | None:
    if settings.metrics_port is None:
        return None
    registry = CollectorRegistry()
    engine, stream = EngineMetrics(registry), StreamMetrics(registry)
    server = serve(registry, settings.metrics_host, settings.metrics_port, "worker")
    return WorkerMetrics(registry, engine, stream, server)


def serve_dispatcher(settings: Settings, linkage: Linkage) -> DispatcherMetrics | None:
    if settings.metrics_port is None:
        return None
    registry = CollectorRegistry()
    stream, faults = StreamMetrics(registry), LinkageMetrics(registry)
    registry.register(LinkageCollector(linkage.store.r, linkage.clock, faults))
    server = serve(registry, settings.metrics_host, settings.metrics_port, "dispatcher")
    return DispatcherMetrics(registry, stream, faults, server)
