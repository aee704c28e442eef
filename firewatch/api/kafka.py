"""The API's Kafka side: accepted detections to the detections topic, packed per partition (the
partition of their device id) as `firewatch produce` sends them (stream/pack.py), and the
readiness probe's metadata request. aiokafka is imported only when the API is configured for
Kafka (FIREWATCH_API_INGEST=kafka).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from firewatch.api.ready import Probe
from firewatch.model import AnyDetection
from firewatch.stream.pack import MESSAGE_BYTES, Packer, pack
from firewatch.stream.topics import KafkaError, Topics, ensure_topics

REQUEST_TIMEOUT_MS = 10_000


class KafkaSink:
    destination: Literal["engine", "kafka"] = "kafka"

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self._producer: Any = None

    async def start(self) -> None:
        """Create firewatch's topics when missing (as `firewatch produce` does) and connect."""
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaConnectionError

        await ensure_topics(self.bootstrap, self.topics)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=5,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            max_batch_size=2 * MESSAGE_BYTES,
            max_request_size=2 * MESSAGE_BYTES,
        )
        try:
            await producer.start()
        except KafkaConnectionError as exc:
            raise KafkaError(f"cannot reach the Kafka broker at {self.bootstrap}: {exc}") from None
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, lines: Sequence[bytes], detections: Sequence[AnyDetection]) -> None:
        """Each record's JSON text as it came, packed with the others for the partition of its
        device_id (from validation: the text is not parsed again); returns once the broker has
        them all (acks=all)."""
        from aiokafka.errors import KafkaError as ClientError

        if self._producer is None:
            raise KafkaError(f"the producer to {self.bootstrap} is not started")
        topic = self.topics.detections
        try:
            packer = Packer(sorted(await self._producer.partitions_for(topic)))
            keys = [d["device_id"].encode() for d in detections]
            sent = [
                await self._producer.send(topic, value, partition=p)
                for p, value in pack(lines, keys, packer)
            ]
            await asyncio.gather(*sent)
        except ClientError as exc:
            raise KafkaError(f"sending to {topic} on {self.bootstrap}: {exc!r}") from None


def kafka_probe(bootstrap: str, timeout: float) -> Probe:
    """A metadata request to the broker: it answers with its brokers and topics."""

    async def probe() -> str:
        from aiokafka.client import AIOKafkaClient

        client = AIOKafkaClient(
            bootstrap_servers=bootstrap, request_timeout_ms=max(1, int(timeout * 1000))
        )
        try:
            await client.bootstrap()
            brokers = len(client.cluster.brokers())
        finally:
            await client.close()
        return f"metadata from {bootstrap}: {brokers} broker(s)"

    return probe
