"""Getting metrics out: a snapshot (exposition text) for the file of `replay`/`demo
--metrics-out`, an HTTP server of its own for `worker`/`dispatcher --metrics-port`, and the list
of every name firewatch exports (for checks of alert rules and dashboards against it)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import Metric

from firewatch.clock import SystemClock
from firewatch.errors import FirewatchError
from firewatch.metrics.api import ApiMetrics
from firewatch.metrics.engine import EngineMetrics
from firewatch.metrics.linkage import LinkageCollector, LinkageMetrics
from firewatch.metrics.stream import StreamMetrics

log = logging.getLogger(__name__)
TYPES_WITHOUT_SUFFIX = frozenset({"gauge", "unknown", "info", "stateset"})


def snapshot(registry: CollectorRegistry) -> bytes:
    """Every metric of `registry` now, in Prometheus' text format."""
    return generate_latest(registry)


def write_snapshot(registry: CollectorRegistry, path: Path) -> None:
    """The snapshot to `path`, replaced whole (written beside it, then renamed)."""
    text = snapshot(registry)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(text)
        os.replace(partial, path)
    except OSError as exc:
        raise FirewatchError(f"metrics snapshot not written to {path}: {exc}") from exc


@dataclass
class MetricsServer:
    """prometheus_client's HTTP server (a thread) serving one registry at /metrics."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(registry: CollectorRegistry, host: str, port: int, what: str) -> MetricsServer:
    """Serve `registry` on http://host:port/metrics (port 0: any free port) for `what` (the
    process, named in the log line and in errors)."""
    try:
        server, thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise FirewatchError(
            f"{what}: metrics cannot listen on {host}:{port} ({exc}): give another "
            "--metrics-port (FIREWATCH_METRICS_PORT) or --metrics-host (FIREWATCH_METRICS_HOST)"
        ) from exc
    running = MetricsServer(server, thread)
    log.warning("%s: metrics on http://%s:%d/metrics", what, host, running.port)
    return running


def exported_names() -> frozenset[str]:
    """Every metric name firewatch exports, as its documentation names them: counters with
    `_total`, histograms by their base name (their series: `exported_series`)."""
    names = set()
    for family in _families():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return frozenset(names)


def exported_series() -> frozenset[str]:
    """Every series name a scrape of firewatch can hold (what PromQL names): `_total` of
    counters, `_bucket`, `_count` and (when kept) `_sum` of histograms, gauges as they are."""
    names: set[str] = set()
    for family in _families():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_count"))
            if family.name.startswith("firewatch_linkage_"):
                continue  # from the aggregates' bins: no _sum (metrics/linkage.py)
            names.add(family.name + "_sum")
        elif family.type in TYPES_WITHOUT_SUFFIX:
            names.add(family.name)
    return frozenset(names)


def _families() -> list[Metric]:
    """Every firewatch metric family: the in-process ones on a registry of their own, and what
    the linkage collector describes (without Redis), since no single process has them all."""
    registry = CollectorRegistry()
    EngineMetrics(registry)
    StreamMetrics(registry)
    LinkageMetrics(registry)
    ApiMetrics(registry)
    return [*registry.collect(), *LinkageCollector(None, SystemClock()).describe()]
