"""`firewatch api`: the app wired from the settings, on uvicorn."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from firewatch.api.app import create_app
from firewatch.api.ingest import EngineSink, Intake, Sink
from firewatch.api.ready import Probe, redis_probe
from firewatch.clock import SystemClock
from firewatch.linkage.consumer import LinkageConsumer
from firewatch.metrics import EngineMeter, EngineMetrics, LinkageCollector, LinkageMetrics
from firewatch.rules import load_rules
from firewatch.runtime import open_engine, open_linkage
from firewatch.settings import Settings

# a request must not wait for ever on Redis: a few retries, then 503 (the events are kept)
DELIVERY_ATTEMPTS = 3
# seconds uvicorn waits for responses to finish once it is told to stop, before cancelling them
GRACEFUL_SHUTDOWN_S = 5


def build_app(settings: Settings) -> FastAPI:
    """The API of the settings. Its metrics (GET /metrics): the requests', the intake's, and
    with FIREWATCH_API_INGEST=engine (this process dispatches then) its engine's and the linkage
    queue's; with `kafka`, the workers and the dispatcher export those."""
    clock = SystemClock()
    linkage = open_linkage(settings, clock)
    probes: dict[str, Probe] = {"redis": redis_probe(linkage.store.r)}
    registry = CollectorRegistry()
    engine_metrics = EngineMetrics(registry)
    sink: Sink
    if settings.api_ingest == "kafka":
        from firewatch.api.kafka import KafkaSink, kafka_probe
        from firewatch.stream.topics import Topics

        sink = KafkaSink(settings.kafka_bootstrap, Topics.of(settings))
        probes["kafka"] = kafka_probe(settings.kafka_bootstrap, settings.api_ready_timeout)
    else:
        faults = LinkageMetrics(registry)
        registry.register(LinkageCollector(linkage.store.r, clock, faults))
        consumer = LinkageConsumer(linkage, max_attempts=DELIVERY_ATTEMPTS, observer=faults)
        sink = EngineSink(open_engine(settings), consumer, EngineMeter(engine_metrics, clock))
    rules = load_rules(settings.rules)
    intake = Intake(sink, rules.sources.max_future, settings.max_line_bytes, engine_metrics)
    return create_app(settings, linkage, clock, intake, probes=probes, registry=registry)


class Server:
    """uvicorn serving a firewatch app, which ends its event streams first when it shuts down:
    uvicorn waits for open responses to finish, and an event stream never does by itself."""

    def __init__(self, app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
        import uvicorn

        hub = app.state.firewatch.hub
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )

        class _Server(uvicorn.Server):
            async def shutdown(self, sockets: Any = None) -> None:
                hub.close()
                await super().shutdown(sockets)

        self.uvicorn = _Server(config)

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (or `stop`)."""
        self.uvicorn.run()

    def stop(self) -> None:
        self.uvicorn.should_exit = True

    @property
    def started(self) -> bool:
        return bool(self.uvicorn.started)


def serve(settings: Settings, log_level: str = "info") -> None:
    Server(build_app(settings), settings.api_host, settings.api_port, log_level).run()
