"""The worker's locate stage on Kafka: a batched aiokafka consumer of the detections topic
(group `<group>.locate`, manual commits) and a producer to the located and rejects topics; the
batch logic is stages.Worker.locate (see worker.py for the whole worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from operator import attrgetter
from typing import Any

from firewatch.metrics import StreamMetrics
from firewatch.stream.observe import positions, record_lag
from firewatch.stream.stages import ENVELOPE_BYTES, MARKER, Worker

log = logging.getLogger(__name__)
LOCATE_BATCH = 20_000  # detections per getmany at most
_VALUE, _OFFSET, _TIMESTAMP = attrgetter("value"), attrgetter("offset"), attrgetter("timestamp")


def locate_clients(worker: Worker, metrics: StreamMetrics | None = None) -> tuple[Any, Any]:
    """The locate stage's aiokafka consumer (group `<group>.locate`, manual commits) and
    producer (acks from all replicas); neither started."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

    settings = worker.settings

    class Revoked(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            worker.forget_sources({tp.partition for tp in revoked})

        async def on_partitions_assigned(self, assigned: Any) -> None:
            if metrics is not None:
                metrics.rebalances.inc()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.kafka_group}.locate",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    consumer.subscribe([worker.topics.detections], listener=Revoked())
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=2,
        max_batch_size=ENVELOPE_BYTES * 2,
        max_request_size=ENVELOPE_BYTES * 2,
    )
    return consumer, producer


async def run_locate(
    worker: Worker,
    consumer: Any,
    producer: Any,
    retry_after: float = 1.0,
    metrics: StreamMetrics | None = None,
) -> None:
    """The locate stage: detections in batches (getmany), located messages, dead letters and
    progress markers out; a batch's offsets are committed once all it sent is acknowledged (in a
    task beside the loop: Commits), and a batch that could not be delivered is read again.
    Partitions read to their end (as the broker says) are re-checked every half second and their
    claims re-sent every second (progress.py); the consumer lag is recorded then (`metrics`)."""
    from aiokafka.errors import IllegalStateError, KafkaError

    topics = worker.topics
    where = f"locate {topics.detections} -> {topics.located}"
    marked = checked = 0.0  # when a marker was last sent, when the partitions' ends were asked
    caught_up: set[int] = set()

    async def deliver(outgoing: list[tuple[str, bytes | None, bytes, int | None]]) -> None:
        sent = [await producer.send(t, v, key=k, partition=q) for t, k, v, q in outgoing]
        await asyncio.gather(*sent)

    def failed(operation: str) -> None:
        if metrics is not None:
            metrics.error(operation)

    def markers() -> list[tuple[str, bytes | None, bytes, int | None]]:
        nonlocal marked
        sources = len(consumer.partitions_for_topic(topics.detections) or ())
        marker = worker.marker(caught_up, sources)
        if marker is None:
            return []
        marked = worker.timer()
        return [(topics.located, MARKER, marker, q) for q in range(topics.partitions)]

    commits = Commits(consumer, where, worker.timer, metrics)
    await producer.start()
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=LOCATE_BATCH)
            now = worker.timer()
            if now - checked >= 0.5:
                try:
                    where_now, checked = await positions(consumer), now
                except KafkaError as exc:
                    failed("offsets")
                    log.warning("%s: end offsets not known (%r); no partition is quiet", where, exc)
                    caught_up = set()
                else:
                    caught_up = {tp.partition for tp, (pos, end) in where_now.items() if pos >= end}
                    if metrics is not None:
                        record_lag(metrics, topics.detections, where_now)
                    if caught_up >= {tp.partition for tp in consumer.assignment()}:
                        worker.read_out_at = worker.timer()  # the broker: nothing left to read
            if not batches:
                if not consumer.assignment():  # in a rebalance: input paused, not ended
                    worker.last_input = now
                elif caught_up and now - marked >= 1.0:
                    try:
                        await deliver(markers())
                    except KafkaError as exc:
                        failed("send")
                        log.warning("%s: progress marker not delivered (%r)", where, exc)
                continue
            worker.last_input = now
            caught_up -= {tp.partition for tp in batches}  # records came: not at its end
            outgoing: list[tuple[str, bytes | None, bytes, int | None]] = []
            for tp, records in batches.items():
                out, dead = worker.locate(
                    tp.partition,
                    list(map(_VALUE, records)),  # C-level passes: no Python frame per record
                    list(map(_OFFSET, records)),
                    list(map(_TIMESTAMP, records)),
                )
                outgoing += [(topics.located, key, value, None) for key, value in out]
                outgoing += [(topics.rejects, None, value, None) for value in dead]
            try:
                await deliver(outgoing + markers())
            except KafkaError as exc:  # e.g. the broker away longer than the producer's timeout
                failed("send")
                log.warning("%s: a batch was not delivered (%r); reading it again", where, exc)
                await asyncio.sleep(retry_after)
                for tp, records in batches.items():
                    with contextlib.suppress(IllegalStateError):  # moved away meanwhile
                        consumer.seek(tp, records[0].offset)
                continue
            commits.add({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
    finally:
        await commits.settled()
        await consumer.stop()
        await producer.stop()


class Commits:
    """The locate stage's offset commits, in a task of their own, one at a time, each of the
    newest offsets delivered so far: the stage reads and locates its next batch while the broker
    answers. Awaited in the loop, a commit took more of a live stage's time than anything else
    (21 ms at the median of a 48 ms read-locate-deliver-commit cycle in bench_stream's latency
    phase, 2026-12-05), and every record read waits for a whole cycle.

    A commit that fails (the partitions moved, or the broker is away) is said and counted; its
    offsets are tried again with the next batch's, but no partition's that has moved away:
    whoever reads a partition next reads from its last commit (duplicates are harmless
    downstream: the engine drops detections it has seen). Nothing is lost: only a delivered
    batch's offsets come here."""

    def __init__(
        self, consumer: Any, where: str, timer: Any, metrics: StreamMetrics | None = None
    ) -> None:
        self.consumer = consumer
        self.where = where
        self.timer = timer
        self.metrics = metrics
        self.pending: dict[Any, int] = {}  # partition -> the offset after its last delivered batch
        self.task: asyncio.Future[None] | None = None

    def add(self, offsets: dict[Any, int]) -> None:
        """A delivered batch's next offsets: committed soon, with any added meanwhile."""
        self.pending.update(offsets)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._commit())

    async def settled(self) -> None:
        """Once every offset added is committed, or failed to be (the stage is stopping)."""
        while self.task is not None and not self.task.done():
            await asyncio.shield(self.task)

    async def _commit(self) -> None:
        from aiokafka.errors import IllegalStateError, KafkaError

        while self.pending:
            # none of a partition moved away meanwhile: its new owner reads from its last commit
            # (and a commit that names it fails whole)
            assigned = self.consumer.assignment()
            offsets = {tp: o for tp, o in self.pending.items() if tp in assigned}
            self.pending = {}
            if not offsets:
                return
            began = self.timer()
            try:
                await self.consumer.commit(offsets)
            except (KafkaError, IllegalStateError) as exc:
                if self.metrics is not None:
                    self.metrics.error("commit")
                log.warning("%s: batch not committed, it will be read again: %r", self.where, exc)
                self.pending = {**offsets, **self.pending}  # tried again with the next batch's
                return
            if self.metrics is not None:
                self.metrics.commit_latency.observe(self.timer() - began)
