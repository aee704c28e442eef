"""The topics firewatch uses, created explicitly with their partition counts.

Faust and the broker would otherwise auto-create a topic with the broker's default partition
count on first use, which then disagrees with the table changelogs (PartitionsMismatch).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from firewatch.errors import FirewatchError
from firewatch.settings import Settings


@dataclass(frozen=True)
class Topics:
    detections: str
    located: str
    incidents: str
    rejects: str
    partitions: int

    @classmethod
    def of(cls, settings: Settings) -> Topics:
        return cls(
            detections=settings.topic_detections,
            located=settings.topic_located,
            incidents=settings.topic_incidents,
            rejects=settings.topic_rejects,
            partitions=settings.kafka_partitions,
        )

    def names(self) -> list[str]:
        return [self.detections, self.located, self.incidents, self.rejects]


class KafkaError(FirewatchError):
    """The broker is unreachable or refused an operation (names the broker and the topic)."""


async def ensure_topics(bootstrap: str, topics: Topics) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaConnectionError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise KafkaError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in topics.names() if n not in existing]
        if wanted:
            response = await admin.create_topics(
                [
                    NewTopic(n, num_partitions=topics.partitions, replication_factor=1)
                    for n in wanted
                ]
            )
            for name, code, *message in response.topic_errors:
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (another worker won the race)
                    raise KafkaError(
                        f"creating topic {name} on {bootstrap}: error {code} {message}"
                    )
        return wanted
    finally:
        await admin.close()


def text_field(value: bytes | None, name: str) -> bytes | None:
    """A message's JSON object's string field `name`, as bytes (a key or an id); None when the
    message is empty, not JSON, not an object, or the field is missing or not a string."""
    if not value:
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    field = record.get(name) if isinstance(record, dict) else None
    return field.encode() if isinstance(field, str) else None
