"""`firewatch api`: the app wired from the settings, on uvicorn."""

from __future__ import annotations

from fastapi import FastAPI

from firewatch.api.app import create_app
from firewatch.api.ingest import EngineSink, Intake, Sink
from firewatch.api.ready import Probe, redis_probe
from firewatch.clock import SystemClock
from firewatch.linkage.consumer import LinkageConsumer
from firewatch.rules import load_rules
from firewatch.runtime import open_engine, open_linkage
from firewatch.settings import Settings

# a request must not wait for ever on Redis: a few retries, then 503 (the events are kept)
DELIVERY_ATTEMPTS = 3


def build_app(settings: Settings) -> FastAPI:
    clock = SystemClock()
    linkage = open_linkage(settings, clock)
    probes: dict[str, Probe] = {"redis": redis_probe(linkage.store.r)}
    sink: Sink
    if settings.api_ingest == "kafka":
        from firewatch.api.kafka import KafkaSink, kafka_probe
        from firewatch.stream.topics import Topics

        sink = KafkaSink(settings.kafka_bootstrap, Topics.of(settings))
        probes["kafka"] = kafka_probe(settings.kafka_bootstrap, settings.api_ready_timeout)
    else:
        consumer = LinkageConsumer(linkage, max_attempts=DELIVERY_ATTEMPTS)
        sink = EngineSink(open_engine(settings), consumer)
    rules = load_rules(settings.rules)
    intake = Intake(sink, rules.sources.max_future, settings.max_line_bytes)
    return create_app(settings, linkage, clock, intake, probes=probes)


def serve(settings: Settings, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.run(
        build_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
    )
