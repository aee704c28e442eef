"""`firewatch worker`: the engine between Kafka topics, inside one Faust app.

    firewatch.detections --locate--> firewatch.located (keyed by region) --incidents-->
        firewatch.incidents (keyed by incident id)          bad records -> firewatch.rejects

Both stages take whole batches and call the one engine (their logic is in stages.py; the locate
stage's Kafka loop in locate.py; metrics through observe.py when given). `locate`
validates (rejects go to the dead-letter topic with their partition and offset) and finds each
detection's region; it reads the detections topic with a batched aiokafka consumer (its own
group, `<group>.locate`), because a Faust stream handles records one by one (a Faust agent here
topped out at 8,400 detections/s even with `take_events`, all of it event-loop machinery per
record); it commits a batch's offsets once everything the batch produced is acknowledged by the
broker, and reads a batch again when the broker did not take it. It forwards one message per
region and batch, so the located topic carries few, large messages. `incidents` is a Faust agent
on the located topic: it runs one Engine per region, whose state goes to the changelog of a Faust
table at most every `snapshot_every` seconds (and, once the broker has it, to the local store);
the located messages a snapshot covers are acked only after it is sent, so a killed, stopped or
rebalanced worker's successor resumes from a snapshot and the messages after it. A stopping
worker, or one in a rebalance, snapshots at once (Faust waits for those acks).

Event time across partitions: a located partition holds records of every detection partition,
interleaved. `locate` therefore sends, after each batch, a progress marker (the latest event time
forwarded from each detection partition) to every located partition; `incidents` processes with
`hold=True` and moves each region's watermark to the least advanced detection partition, so no
record looks late merely because another partition ran ahead. A partition read to its end (as
the broker says) claims the progress of what was appended `quiet_after` seconds before the newest
record read (progress.py), so one without devices does not hold every watermark back. When no
detection has arrived for `idle_release` seconds (progress markers are not input; rebalances and
recoveries are a pause, not the end) and the broker has just said that every detection
partition this worker reads is read to its end (a broker that does not answer, or records not yet
fetched, are a pause too), every region is released to its latest event time (liveness at the end
of a stream; what a replay's flush does).

A table recovery that makes no progress for `stall_after` seconds ends the process with exit code
75, for its supervisor to start it again (watchdog.py).

Closed loop: a `masks` task follows the compacted masks topic from its start (masks.py) and
applies false-alarm masks to every region's engine; the incidents stage starts only once it has
read the whole topic.

Delivery is at least once; incident event ids are deterministic, so consumers dedup by them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import faust
from faust.types.tuples import Message

from firewatch.engine.core import Engine
from firewatch.metrics import EngineMetrics, StreamMetrics
from firewatch.model import IncidentEvent
from firewatch.settings import Settings
from firewatch.stream.locate import locate_clients, run_locate
from firewatch.stream.masks import follow_masks
from firewatch.stream.observe import StreamSensor, faust_lag
from firewatch.stream.stages import MARKER, QUIET_AFTER, Worker
from firewatch.stream.topics import Topics, reader
from firewatch.stream.watchdog import EXIT_STALLED, RecoveryWatch

log = logging.getLogger(__name__)
INCIDENT_BATCH = 500  # located messages per take (each carries a region's share of a batch)
WITHIN = 0.01  # seconds a take waits to fill: located messages are few and large
READ_OUT_FRESH = 2.0  # seconds a "nothing left to read" from the broker counts for the idle release
LAG_EVERY = 5.0  # seconds between reads of the incidents stage's consumer lag
STALL_AFTER = 60.0  # seconds a table recovery may go without progress (watchdog.py)


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


class Pending:
    """Regions changed since their last snapshot, and the located messages those snapshots will
    cover: acked (so committed) only once the snapshot is on its way to the changelog."""

    def __init__(self) -> None:
        self.regions: set[bytes] = set()
        self.events: list[Any] = []
        self.stream: Any = None
        self.due = 0.0

    def drop(self, partitions: set[int]) -> None:
        """Revoked partitions: their messages are read again by the new owner."""
        self.events = [e for e in self.events if e.message.partition not in partitions]


class App(faust.App):
    """Faust's app, which at shutdown first saves the state of the incidents stage and acks the
    messages it covers: Faust then waits for every message taken to be acked, and timers (which
    checkpoint otherwise) have stopped by then."""

    before_stop: Callable[[], Awaitable[None]] | None = None

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            await self.before_stop()
        await super().on_stop()


def build_app(
    settings: Settings,
    make_engine: Callable[[], Engine],
    idle_release: float = 5.0,
    quiet_after: float = QUIET_AFTER,
    stall_after: float = STALL_AFTER,
    engine_metrics: EngineMetrics | None = None,
    stream_metrics: StreamMetrics | None = None,
) -> faust.App:
    """The worker's Faust app (see the module); with metrics, the engines' and the stages' are
    counted there (firewatch/metrics: the caller serves the registry)."""
    topics = Topics.of(settings)
    snapshot_every = settings.snapshot_every
    parts = topics.partitions
    app = App(
        settings.kafka_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.state_store,
        datadir=str(settings.state_dir),
        topic_partitions=parts,
        web_enabled=False,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        broker_session_timeout=10.0,  # a killed worker's partitions move on after 10 s, not 60
        broker_heartbeat_interval=3.0,
        broker_commit_interval=snapshot_every,  # acked at each snapshot, committed soon after
        key_serializer="raw",  # every topic and the table's changelog carry bytes as they are
        value_serializer="raw",
    )
    worker = Worker(settings, make_engine, quiet_after=quiet_after, metrics=engine_metrics)
    located = _raw_topic(app, topics.located, parts)
    incidents = _raw_topic(app, topics.incidents, parts)
    state = app.Table(
        "engine-state", key_type=bytes, value_type=bytes, partitions=parts, default=None
    )
    pending = Pending()

    def save(regions: set[bytes]) -> None:
        for region, (partition, blob) in worker.states(regions).items():
            state.changelog_topic.send_soon(
                key=region,
                value=blob,
                partition=partition,
                callback=partial(_stored, state.data, region, blob),
            )

    def saved(region: bytes) -> bytes | None:
        # by iteration over the assigned partitions: a RocksDB store's get() looks in the
        # partition of the stream's current event, which in a batch may be another one
        return dict(state.data.items()).get(region)

    async def checkpoint() -> None:
        """Snapshot the changed regions, then ack the located messages they cover."""
        # taken first: what the agent adds while this awaits belongs to the next checkpoint
        regions, pending.regions = pending.regions, set()
        events, pending.events = pending.events, []
        pending.due = worker.timer() + snapshot_every
        save(regions)
        for event in events:
            await pending.stream.ack(event)

    @app.task  # type: ignore[untyped-decorator]
    async def locate() -> None:
        try:
            clients = locate_clients(worker, stream_metrics)
            await run_locate(worker, *clients, metrics=stream_metrics)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker cannot go on without its input: stop it loudly
            log.exception("%s: the locate stage failed", topics.detections)
            await app.crash(exc)

    @app.task  # type: ignore[untyped-decorator]
    async def masks() -> None:
        consumer = reader(settings.kafka_bootstrap, topics.masks)
        try:
            await follow_masks(consumer, topics.masks, worker.set_masks, worker.masks.ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # without the masks a worker would open what they suppress
            log.exception("%s: following the closed-loop masks failed", topics.masks)
            await app.crash(exc)

    @app.agent(located)
    async def incident_agent(stream: Any) -> None:
        pending.stream = stream
        if not worker.masks.ready.is_set():  # what a false alarm suppresses, before any input
            await worker.masks.ready.wait()
        async for batch in stream.noack_take(INCIDENT_BATCH, within=WITHIN):
            if any(e.key != MARKER for e in batch):  # progress markers are not input
                worker.last_input = worker.timer()
            for partition, group in _by_partition(batch).items():
                records = [(e.key, e.value) for e in group]
                events, touched = worker.incidents(partition, records, saved)
                _publish(incidents, events)
                pending.regions |= touched
            pending.events += batch
            # a rebalance or shutdown waits for these messages to be acked: do it at once
            if app.should_stop or app.rebalancing or worker.timer() >= pending.due:
                await checkpoint()

    @app.timer(snapshot_every)  # type: ignore[untyped-decorator]
    async def snapshot() -> None:
        if pending.events or pending.regions:
            await checkpoint()

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def idle() -> None:
        if app.rebalancing:  # revoking, assigning or recovering: input paused, not ended
            worker.last_input = worker.timer()
        now = worker.timer()
        if now - worker.last_input < idle_release or now - worker.read_out_at > READ_OUT_FRESH:
            return  # input came lately, or the broker has not said lately that none is left
        worker.load_all(state.data)
        events, touched = worker.release_idle()
        _publish(incidents, events)
        save(touched)

    tables: Any = app.tables  # faust.tables.TableManager: its `recovery` is not in the protocol
    watch = RecoveryWatch(tables.recovery, stall_after)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def watchdog() -> None:
        stalled = watch.check(worker.timer())
        if stalled:
            log.error(
                "%s: %s; exiting (%d) to be started again", app.conf.id, stalled, EXIT_STALLED
            )
            logging.shutdown()
            os._exit(EXIT_STALLED)  # safe at any moment; Faust's own shutdown may wait for ever

    async def revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == topics.located}
        pending.drop(gone)
        worker.forget(gone)

    if stream_metrics is not None:
        app.sensors.add(StreamSensor(stream_metrics))

        @app.timer(LAG_EVERY)  # type: ignore[untyped-decorator]
        async def lag() -> None:
            await faust_lag(app, topics.located, stream_metrics)

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]
    app.before_stop = checkpoint

    return app


class _Change(NamedTuple):
    """What a store's apply_changelog_batch reads of a changelog event."""

    key: bytes
    value: bytes
    message: Message


def _stored(store: Any, key: bytes, value: bytes, sent: Any) -> None:
    """A region's state is in the changelog: put it in the local store, in its partition and
    with its changelog offset, as a recovery would. (Faust's table writes would put it in the
    partition of the current event, which in a batch may be another one, and RocksDB would then
    record an offset it has no data for.)"""
    meta = sent.result()
    tp = meta.topic_partition
    message = Message(tp.topic, tp.partition, meta.offset, 0.0, 0, None, key, value, None)
    store.apply_changelog_batch([_Change(key, value, message)], _same, _same)


def _same(x: Any) -> Any:
    return x


def _publish(topic: Any, events: list[IncidentEvent]) -> None:
    for e in events:
        topic.send_soon(key=e.incident_id.encode(), value=e.model_dump_json().encode())


def _by_partition(batch: Sequence[Any]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for event in batch:
        groups[event.message.partition].append(event)
    return groups
