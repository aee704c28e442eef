"""`firewatch consume-incidents`: incident events from Kafka, each event id once.

Delivery through Kafka is at least once: after a crash or a rebalance a worker may send an event
again. Event ids are deterministic, so dropping the ids already seen gives each event once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from firewatch.stream.topics import KafkaError, text_field


@dataclass
class ConsumeSummary:
    received: int = 0
    duplicates: int = 0
    invalid: int = 0  # not an incident event (no event_id): counted, not written

    @property
    def written(self) -> int:
        return self.received - self.duplicates - self.invalid

    def render(self, topic: str) -> str:
        return (
            f"{topic}: {self.received:,} messages, {self.written:,} events written, "
            f"{self.duplicates:,} duplicates dropped, {self.invalid:,} not incident events"
        )


async def consume_incidents(
    bootstrap: str,
    topic: str,
    out: IO[bytes],
    idle_timeout: float | None = 5.0,
    group_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ConsumeSummary:
    """Write each incident event once to `out`, from the earliest offset; stop after
    `idle_timeout` seconds without a message (None: follow for ever)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=group_id is not None,
    )
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        raise KafkaError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    summary = ConsumeSummary()
    seen: set[bytes] = set()
    last = clock()
    try:
        while idle_timeout is None or clock() - last < idle_timeout:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    last = clock()
                    summary.received += 1
                    event_id = text_field(message.value, "event_id")
                    if event_id is None:
                        summary.invalid += 1
                    elif event_id in seen:
                        summary.duplicates += 1
                    else:
                        seen.add(event_id)
                        out.write(message.value.rstrip(b"\n") + b"\n")
            out.flush()
    finally:
        await consumer.stop()
    return summary


def consume_main(
    bootstrap: str, topic: str, out: IO[bytes], idle_timeout: float | None, group_id: str | None
) -> str:
    summary = asyncio.run(consume_incidents(bootstrap, topic, out, idle_timeout, group_id))
    return summary.render(topic)
