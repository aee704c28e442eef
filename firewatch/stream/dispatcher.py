"""`firewatch dispatcher`: from the incidents topic to the field teams, on a timer of its own.

    firewatch.incidents --(group <group>.dispatch)--> LinkageConsumer -> Redis (orders, streams)
    escalation every routing.escalate_every        --> LinkageConsumer.escalate
    Redis fw:masks (false-alarm closures)  --MaskPublisher--> firewatch.masks (compacted)

- Incident events are read in batches and applied with the one LinkageConsumer that also feeds a
  replay's file and the demo to the queue. A batch's offsets are committed only once Redis has
  all of it; every write is idempotent, so a batch read again (after a crash or a rebalance)
  changes nothing twice.
- While Redis is unreachable the consumer retries the same batch with backoff (no busy loop),
  the partitions are paused and nothing is committed; a warning every WARN_EVERY seconds says
  for how long. It resumes by itself.
- A message that is not an incident event is logged with its partition and offset and skipped:
  it cannot change what happens to the others.
- Several dispatchers may run: they share the topic's partitions, and escalation stays once per
  step because the escalation script acts only on an order still past its deadline and moves the
  deadline in the same atomic step, so a second dispatcher's call finds nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis

from firewatch.linkage import keys
from firewatch.linkage.consumer import UNREACHABLE, LinkageConsumer
from firewatch.linkage.service import Linkage
from firewatch.metrics import LinkageMetrics, StreamMetrics
from firewatch.model import Event, parse_event
from firewatch.settings import Settings
from firewatch.stream.masks import MaskPublisher
from firewatch.stream.observe import positions, record_lag
from firewatch.stream.topics import Topics, all_partitions, reader

log = logging.getLogger(__name__)
BATCH = 2000  # incident events per getmany at most
WARN_EVERY = 10.0  # seconds between "Redis unreachable" warnings while paused
MASKS_EVERY = 1.0  # seconds between looks at Redis's masks version
LAG_EVERY = 5.0  # seconds between reads of the consumer lag (metrics)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        linkage: Linkage,
        escalate_every: float,
        stream_metrics: StreamMetrics | None = None,
        linkage_metrics: LinkageMetrics | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topics = Topics.of(settings)
        self.group = f"{settings.kafka_group}.dispatch"
        self.linkage = linkage
        # each with its own retry loop, in a worker thread
        self.delivery = LinkageConsumer(linkage, observer=linkage_metrics)
        self.escalation = LinkageConsumer(linkage, observer=linkage_metrics)
        self.publisher = MaskPublisher(linkage.store)
        self.escalate_every = escalate_every
        self.counts: Counter[str] = Counter()
        self.stream_metrics = stream_metrics
        self.linkage_metrics = linkage_metrics
        self.timer = timer  # a monotonic clock: how long Redis was away, when to record the lag

    def _kafka_failed(self, operation: str) -> None:
        if self.stream_metrics is not None:
            self.stream_metrics.error(operation)

    def _redis_failed(self, operation: str) -> None:
        if self.linkage_metrics is not None:
            self.linkage_metrics.error(operation)

    # -- incident events ----------------------------------------------------------------------
    def parse(self, partition: int, records: Sequence[Any]) -> list[Event]:
        """A partition's records as incident or device events; anything else is said and
        skipped."""
        events = []
        for r in records:
            try:
                events.append(parse_event(r.value or b""))
            except ValueError as exc:
                self.counts["invalid"] += 1
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning(
                    "dispatcher: %s[%d]@%d is not an incident or device event, skipped: %s",
                    self.topics.incidents,
                    partition,
                    r.offset,
                    first,
                )
        return events

    async def apply(self, consumer: Any, events: list[Event]) -> None:
        """Deliver to Redis, retrying until it answers; the partitions are paused meanwhile. A
        batch Redis refuses (a script error, not an outage) is delivered event by event, so that
        only the event it refuses is skipped, said with its id."""
        try:
            await self._deliver(consumer, events)
        except redis.ResponseError as exc:
            self._redis_failed("deliver")
            log.error("dispatcher: Redis refused a batch of %d events (%s)", len(events), exc)
            for event in events:
                try:
                    await self._deliver(consumer, [event])
                except redis.ResponseError as one:
                    self._redis_failed("deliver")
                    self.counts["refused"] += 1
                    log.error(
                        "dispatcher: event %s refused by Redis, skipped: %s", event.event_id, one
                    )

    async def _deliver(self, consumer: Any, events: list[Event]) -> None:
        retries = self.delivery.retries
        began = self.timer()
        task = asyncio.ensure_future(asyncio.to_thread(self.delivery.deliver, events))
        paused: list[Any] = []
        while not task.done():
            await asyncio.wait({task}, timeout=WARN_EVERY if paused else 1.0)
            if task.done():
                break
            if not paused:
                paused = list(consumer.assignment())
                consumer.pause(*paused)
            if self.delivery.retries > retries:
                log.warning(
                    "dispatcher: Redis unreachable for %.0f s; partitions %s of %s paused, "
                    "nothing committed, retrying",
                    self.timer() - began,
                    sorted(tp.partition for tp in paused),
                    self.topics.incidents,
                )
        if paused:
            consumer.resume(*[tp for tp in paused if tp in consumer.assignment()])
            if self.delivery.retries > retries:
                log.warning(
                    "dispatcher: Redis answers again after %.0f s; resumed",
                    self.timer() - began,
                )
        counts = task.result()
        self.counts.update({k: v for k, v in vars(counts).items() if v})

    async def consume(self, consumer: Any) -> None:
        from aiokafka.errors import IllegalStateError, KafkaError

        lag_at = 0.0
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            if self.stream_metrics is not None and self.timer() >= lag_at:
                lag_at = self.timer() + LAG_EVERY
                await self.record_lag(consumer)
            if not batches:
                continue
            events = [e for tp, rs in batches.items() for e in self.parse(tp.partition, rs)]
            if events:
                await self.apply(consumer, events)
            began = self.timer()
            try:
                await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
            except (KafkaError, IllegalStateError) as exc:
                # moved to another dispatcher, or the broker away: whoever reads these
                # partitions next reads the batch again, and applying it again changes nothing
                self._kafka_failed("commit")
                log.warning("dispatcher: batch not committed, it will be read again: %r", exc)
            else:
                if self.stream_metrics is not None:
                    self.stream_metrics.commit_latency.observe(self.timer() - began)

    async def record_lag(self, consumer: Any) -> None:
        from aiokafka.errors import KafkaError

        assert self.stream_metrics is not None
        try:
            where = await positions(consumer)
        except KafkaError as exc:
            self._kafka_failed("lag")
            log.warning("dispatcher: %s consumer lag not known (%r)", self.topics.incidents, exc)
            return
        record_lag(self.stream_metrics, self.topics.incidents, where)

    # -- escalation ---------------------------------------------------------------------------
    async def escalate(self) -> None:
        while True:
            await asyncio.sleep(self.escalate_every)
            try:
                done = await asyncio.to_thread(self.escalation.escalate)
            except redis.RedisError as exc:  # not an outage (the consumer retries those)
                self._redis_failed("escalate")
                log.error(
                    "dispatcher: escalation failed, trying again in %.0f s: %r",
                    self.escalate_every,
                    exc,
                )
                continue
            if done:
                self.counts["escalations"] += len(done)
                log.info("dispatcher: %d orders escalated", len(done))

    # -- closed loop --------------------------------------------------------------------------
    async def publish_masks(self, producer: Any, reader: Any) -> None:
        """Keep the masks topic equal to Redis's masks (read the topic first: send differences)."""
        from aiokafka.errors import KafkaError

        self.publisher.learn(await read_topic(reader, self.topics.masks))
        while True:
            try:
                changes = await asyncio.to_thread(self.publisher.changes)
            except UNREACHABLE as exc:
                self._redis_failed("masks")
                log.debug("dispatcher: masks not read, Redis unreachable: %s", exc)
                changes = {}
            except (redis.RedisError, ValueError) as exc:  # e.g. a mask Redis holds is garbled
                self._redis_failed("masks")
                log.error("dispatcher: masks not read from Redis (%s): %r", keys.MASKS, exc)
                changes = {}
            if changes:
                try:
                    await send_all(producer, self.topics.masks, changes)
                except KafkaError as exc:
                    self._kafka_failed("publish_masks")
                    log.warning("dispatcher: masks not published, trying again: %r", exc)
                else:
                    self.publisher.sent(changes)
                    log.info("dispatcher: masks published: %s", ", ".join(sorted(changes)))
            await asyncio.sleep(MASKS_EVERY)

    async def run(self, consumer: Any, producer: Any, reader: Any) -> None:
        """Until cancelled: the three loops, on unstarted aiokafka clients (`consumer` in the
        dispatch group on the incidents topic, `reader` without a group)."""
        await producer.start()
        await consumer.start()
        try:
            await asyncio.gather(
                self.consume(consumer), self.escalate(), self.publish_masks(producer, reader)
            )
        finally:
            await consumer.stop()
            await producer.stop()


async def read_topic(reader: Any, topic: str) -> dict[str, bytes | None]:
    """A compacted topic's records, from its start to its end as of now: the latest per key
    (`reader`: an unstarted consumer of that topic without a group, so of all its partitions)."""
    await reader.start()
    try:
        parts = await all_partitions(reader, topic)
        await reader.seek_to_beginning()
        ends = await reader.end_offsets(parts) if parts else {}
        out: dict[str, bytes | None] = {}
        while [tp for tp, end in ends.items() if await reader.position(tp) < end]:
            for records in (await reader.getmany(timeout_ms=500)).values():
                out.update((r.key.decode(errors="replace"), r.value) for r in records if r.key)
        return out
    finally:
        await reader.stop()


async def send_all(producer: Any, topic: str, records: Mapping[str, bytes | None]) -> None:
    sent = [await producer.send(topic, v, key=k.encode()) for k, v in records.items()]
    await asyncio.gather(*sent)


def clients(
    settings: Settings, topics: Topics, group: str, metrics: StreamMetrics | None = None
) -> tuple[Any, Any, Any]:
    """The dispatch group's consumer (manual commits; its assignments counted in `metrics`), a
    producer, a group-less reader."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

    class Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        async def on_partitions_assigned(self, assigned: Any) -> None:
            if metrics is not None:
                metrics.rebalances.inc()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
    )
    consumer.subscribe([topics.incidents], listener=Assigned())
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    return consumer, producer, reader(settings.kafka_bootstrap, topics.masks)


def run_dispatcher(
    settings: Settings,
    linkage: Linkage,
    escalate_every: float,
    stream_metrics: StreamMetrics | None = None,
    linkage_metrics: LinkageMetrics | None = None,
) -> Counter[str]:
    """The dispatcher until SIGTERM or SIGINT; returns its counts. With metrics, what it does is
    counted there (the caller serves their registry)."""
    dispatcher = Dispatcher(settings, linkage, escalate_every, stream_metrics, linkage_metrics)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            dispatcher.run(*clients(settings, dispatcher.topics, dispatcher.group, stream_metrics))
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    log.warning(
        "dispatcher: %s (group %s) -> linkage queue; escalation every %.0f s; masks -> %s",
        dispatcher.topics.incidents,
        dispatcher.group,
        escalate_every,
        dispatcher.topics.masks,
    )
    asyncio.run(main())
    return dispatcher.counts
