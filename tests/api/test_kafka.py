"""FIREWATCH_API_INGEST=kafka: accepted detections go to the detections topic on a real broker,
as they came, packed for the partition of their device id (as `firewatch produce` sends them);
rejects stay out."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from aiokafka.partitioner import DefaultPartitioner
from fastapi.testclient import TestClient

from firewatch.api.app import create_app
from firewatch.api.ingest import Intake
from firewatch.api.kafka import KafkaSink, kafka_probe
from firewatch.api.ready import redis_probe
from firewatch.clock import FakeClock
from firewatch.linkage.service import Linkage
from firewatch.settings import Settings
from firewatch.stream.topics import Topics

from ..kafka_fixtures import KafkaTestClient
from .conftest import Bearer
from .test_detections import camera, sensor


def test_accepted_detections_go_to_the_detections_topic(
    kafka: KafkaTestClient,
    settings: Settings,
    linkage: Linkage,
    clock: FakeClock,
    bearer: Bearer,
) -> None:
    suffix = uuid.uuid4().hex[:12]
    topics = Topics(
        detections=f"detections-{suffix}",
        located=f"located-{suffix}",
        incidents=f"incidents-{suffix}",
        rejects=f"rejects-{suffix}",
        masks=f"masks-{suffix}",
        partitions=2,
    )
    probes = {
        "redis": redis_probe(linkage.store.r),
        "kafka": kafka_probe(kafka.bootstrap, 5.0),
    }
    intake = Intake(KafkaSink(kafka.bootstrap, topics), timedelta(minutes=5))
    custom = settings.model_copy(update={"api_ingest": "kafka"})
    app = create_app(custom, linkage, clock, intake, probes=probes)
    now = clock.now()
    good = [orjson.dumps(sensor(now)), orjson.dumps(camera(now))]
    body = b"\n".join([good[0], b'{"source": "sensor"}', good[1]])
    with TestClient(app) as client:  # the lifespan creates the topics and starts the producer
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert {c["name"] for c in ready.json()["checks"]} == {"redis", "kafka"}
        answer = client.post(
            "/v1/detections",
            content=body,
            headers={**bearer("ingest"), "Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 200
        out = answer.json()
        assert (out["accepted"], out["rejected"], out["destination"]) == (2, 1, "kafka")
    # one message per partition, the lines for it packed (stream/pack.py), each in the
    # partition Kafka gives its device id
    every, kafka_partition = [0, 1], DefaultPartitioner()
    at = [kafka_partition(key, every, every) for key in (b"s-1", b"cam-dev-1")]
    expected = {
        p: b"\n".join(line for line, q in zip(good, at, strict=True) if q == p) for p in set(at)
    }
    sent = [(m.partition, m.value) for m in kafka.read_all(topics.detections)]
    assert sorted(sent) == sorted(expected.items())
