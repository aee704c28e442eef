"""The topics firewatch uses, created explicitly with their partition counts.

Faust and the broker would otherwise auto-create a topic with the broker's default partition
count on first use, which then disagrees with the table changelogs (PartitionsMismatch).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from firewatch.errors import FirewatchError
from firewatch.settings import Settings


@dataclass(frozen=True)
class Topics:
    detections: str
    located: str
    incidents: str
    rejects: str
    masks: str
    partitions: int

    @classmethod
    def of(cls, settings: Settings) -> Topics:
        return cls(
            detections=settings.topic_detections,
            located=settings.topic_located,
            incidents=settings.topic_incidents,
            rejects=settings.topic_rejects,
            masks=settings.topic_masks,
            partitions=settings.kafka_partitions,
        )

    def names(self) -> list[str]:
        return [self.detections, self.located, self.incidents, self.rejects, self.masks]

    def new_topic(self, name: str) -> Any:
        """How firewatch creates a topic: the masks topic is compacted, with one partition (a
        small current set that every worker reads whole); the detections topic stamps records
        with the broker's append time (the clock of quiet partitions' claims, progress.py)."""
        from aiokafka.admin import NewTopic

        if name == self.masks:
            return NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})
        configs = {"message.timestamp.type": "LogAppendTime"} if name == self.detections else {}
        return NewTopic(name, self.partitions, 1, topic_configs=configs)


class KafkaError(FirewatchError):
    """The broker is unreachable or refused an operation (names the broker and the topic)."""


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[Any]:
    """A started aiokafka admin client of `bootstrap`, closed after; KafkaError (naming the
    broker) when it cannot be reached."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise KafkaError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(bootstrap: str, topics: Topics) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        wanted = [n for n in topics.names() if n not in existing]
        if wanted:
            response = await admin.create_topics([topics.new_topic(n) for n in wanted])
            for name, code, *message in response.topic_errors:
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (another worker won the race)
                    raise KafkaError(
                        f"creating topic {name} on {bootstrap}: error {code} {message}"
                    )
        return wanted


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: set[int]
) -> dict[int, int]:
    """The offsets `group` has committed on these partitions of `topic` (those it has)."""
    from aiokafka.structs import TopicPartition

    async with admin_client(bootstrap) as admin:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}


def reader(bootstrap: str, topic: str) -> Any:
    """An unstarted consumer of every partition of `topic` from its start, without a group (so
    no committed offsets): for compacted topics read whole, and for tests that read a topic."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )


async def all_partitions(consumer: Any, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every partition of `topic`, once a started consumer of it without a group has been
    assigned them (right after the topic is created, the broker's metadata may lag a moment)."""
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise KafkaError(f"topic {topic}: no partitions known after {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return sorted(consumer.assignment())


def json_object(value: bytes | None) -> dict[str, object] | None:
    """A message's JSON object; None when it is empty, not JSON or not an object."""
    if not value:
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def text_field(value: bytes | None, name: str) -> bytes | None:
    """A message's JSON object's string field `name`, as bytes (a key or an id); None when the
    message is empty, not JSON, not an object, or the field is missing or not a string."""
    field = (json_object(value) or {}).get(name)
    return field.encode() if isinstance(field, str) else None
