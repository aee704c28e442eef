"""`firewatch worker`: the engine between Kafka topics, inside one Faust app.

    firewatch.detections --locate--> firewatch.located (keyed by region) --incidents-->
        firewatch.incidents (keyed by incident id)          bad records -> firewatch.rejects

Both stages take whole batches and call the one engine (their logic is in stages.py; the locate
stage's Kafka loop in locate.py; the incidents stage's snapshots in checkpoint.py, and its check
that no located message is skipped in continuity.py; metrics through
observe.py when given). `WorkerApp` wires them into one Faust app, one method per task, agent and
timer; `build_app` makes one. `locate` validates each line of a message (one or several,
pack.py; rejects go to the dead-letter topic with their partition, offset and line) and finds
each detection's region; it reads the detections topic with a batched aiokafka consumer (its own
group, `<group>.locate`), because a Faust stream handles records one by one (a Faust agent here
topped out at 8,400 detections/s even with `take_events`, all of it event-loop machinery per
record); it commits a batch's offsets once everything the batch produced is acknowledged by the
broker, and reads a batch again when the broker did not take it. It forwards one message per
region and batch, so the located topic carries few, large messages. `incidents` is a Faust agent
on the located topic: it runs one Engine per region, whose state goes to the changelog of a Faust
table at most every `snapshot_every` seconds, less often when its snapshots take long
(checkpoint.py), and, once the broker has it, to the local store;
the located messages a snapshot covers are acked only once the broker has it and the incident
events they produced, so a killed, stopped or rebalanced worker's successor resumes from a
snapshot and the messages after it. A due checkpoint runs in a task beside the stage, which goes
on taking meanwhile; a stopping worker, or one in a rebalance, snapshots at once (Faust waits for
those acks). Incident events go straight to Faust's producer, in order. A snapshot or event the
broker does not take stops the worker (nothing acked: its successor reads those messages again).

Event time across partitions: a located partition holds records of every detection partition,
interleaved. `locate` therefore sends, after each batch, a progress marker (the latest event time
forwarded from each detection partition) to every located partition; `incidents` processes with
`hold=True` and moves each region's watermark to the least advanced detection partition, so no
record looks late merely because another partition ran ahead. A partition read to its end (as
the broker says) claims the progress of what was appended `quiet_after` seconds before the newest
record read (progress.py), so one without devices does not hold every watermark back. When no
detection has arrived for `idle_release` seconds (progress markers are not input; rebalances and
recoveries are a pause, not the end), the broker has just said that every detection partition
this worker reads is read to its end, and the incidents stage has taken every located
partition's messages to the end the broker gives now (progress markers, or a heartbeat when
there is nothing to claim, come to each partition every second, so a live stage keeps taking; a
broker that does not answer, records not yet fetched, and located messages not yet taken, after
a restart or a recovery, are a pause too), every region is released to its latest event time
(liveness at the end of a stream; what a replay's flush does).

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
from typing import Any

import faust
from aiokafka.errors import KafkaError as ClientError  # the client's own errors
from faust.types import TP

from firewatch.engine.core import Engine
from firewatch.metrics import EngineMetrics, StreamMetrics
from firewatch.model import Event, event_key
from firewatch.settings import Settings
from firewatch.stream.checkpoint import Checkpoints, NotDelivered
from firewatch.stream.continuity import Continuity
from firewatch.stream.locate import locate_clients, run_locate
from firewatch.stream.masks import follow_masks
from firewatch.stream.observe import StreamSensor, faust_lag
from firewatch.stream.stages import MARKER, QUIET_AFTER, Worker
from firewatch.stream.topics import KafkaError, Topics, committed_offsets, reader
from firewatch.stream.transport import Transport
from firewatch.stream.watchdog import EXIT_STALLED, RecoveryWatch

log = logging.getLogger(__name__)
INCIDENT_BATCH = 500  # located messages per take (each carries a region's share of a batch)
WITHIN = 0.01  # seconds a take waits to fill: located messages are few and large
READ_OUT_FRESH = 2.0  # seconds a "nothing left to read" from the broker counts for the idle release
LAG_EVERY = 5.0  # seconds between reads of the incidents stage's consumer lag
STALL_AFTER = 60.0  # seconds a table recovery may go without progress (watchdog.py)
# A region's saved state, one message of the table's changelog, may be this large. Kafka's
# default limit is 1 MB, and a busy region's state passes it: 2.4 MB compressed at province scale
# (benchmarks/README.md, Scale), and its device-health records waiting for a held watermark grow
# with every record meanwhile (3.4 MB of them, a 96 h stream sent packed, 2026-12-05). The
# changelog topic is created with this `max.message.bytes` and the producer allowed it.
STATE_MAX_BYTES = 64 * 1024 * 1024


class App(faust.App):
    """Faust's app, which at shutdown first saves the state of the incidents stage and acks the
    messages it covers: Faust then waits for every message taken to be acked, and timers (which
    checkpoint otherwise) have stopped by then. Its consumer asks the broker to hold a fetch of
    partitions without new records for 50 ms, not Faust's 1.5 s (transport.py)."""

    before_stop: Callable[[], Awaitable[None]] | None = None

    def _new_transport(self) -> Any:
        """Faust's aiokafka transport with a short fetch wait (transport.py)."""
        return Transport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            await self.before_stop()
        await super().on_stop()


class FaustWorker(faust.Worker):
    """Faust's worker, without its terminal spinner. To spin on every log record, Faust sets the
    root logger to DEBUG when the log level asked for is WARNING or above (`firewatch worker`'s
    default), and leaves it there after startup: every debug call of aiokafka, Faust and mode
    then made a log record that no handler wrote (2% of a worker's time at 10,000 detections/s,
    py-spy, 2026-12-05), and the spinner's escape codes went to the container's log."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None  # before Faust's handler: none is added, the root keeps `level`
        super().on_setup_root_logger(logger, level)


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
    worker = Worker(settings, make_engine, quiet_after=quiet_after, metrics=engine_metrics)
    return WorkerApp(settings, worker, idle_release, stall_after, stream_metrics).app


def faust_app(settings: Settings) -> App:
    """The Faust app of `settings`: its broker, group, state store and commit pace."""
    return App(
        settings.kafka_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.state_store,
        datadir=str(settings.state_dir),
        topic_partitions=settings.kafka_partitions,
        web_enabled=False,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        broker_session_timeout=10.0,  # a killed worker's partitions move on after 10 s, not 60
        broker_heartbeat_interval=3.0,
        broker_commit_interval=settings.snapshot_every,  # acked at each snapshot, committed soon
        producer_max_request_size=STATE_MAX_BYTES,  # a region's state is one message
        key_serializer="raw",  # every topic and the table's changelog carry bytes as they are
        value_serializer="raw",
    )


class WorkerApp:
    """One worker's Faust app and what runs in it, one method each: the locate stage (a task),
    the masks it follows (a task), the incidents stage (an agent on the located topic), its
    checkpoints (a task of their own when due, a timer, and before the app stops), the idle
    release (a timer), the recovery watchdog (a timer), the revocation of partitions, and the lag
    metric (a timer)."""

    def __init__(
        self,
        settings: Settings,
        worker: Worker,
        idle_release: float = 5.0,
        stall_after: float = STALL_AFTER,
        stream_metrics: StreamMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics.of(settings)
        self.worker = worker
        self.idle_release = idle_release
        self.stream_metrics = stream_metrics
        self.app = app = faust_app(settings)
        self._publishing = asyncio.Lock()  # incident events go to the producer in their order
        self._checkpointing: asyncio.Future[None] | None = None  # checkpoint_soon's
        # each located partition's messages in offset order, none skipped (continuity.py)
        self.continuity = Continuity(self.topics.located, self.committed, self.earliest, self.seek)
        parts = self.topics.partitions
        self.located = _raw_topic(app, self.topics.located, parts)
        table = app.Table(
            "engine-state",
            key_type=bytes,
            value_type=bytes,
            partitions=parts,
            default=None,
            extra_topic_configs={"max.message.bytes": str(STATE_MAX_BYTES)},
        )
        self.checkpoints = Checkpoints(
            worker, table, settings.snapshot_every, producer_failed=self.producer_failed
        )
        tables: Any = app.tables  # faust.tables.TableManager: `recovery` is not in the protocol
        self.watch = RecoveryWatch(tables.recovery, stall_after)

        app.task(self.locate)
        app.task(self.follow_masks)
        app.agent(self.located, name="incidents")(self.take_located)
        app.timer(settings.snapshot_every, name="snapshot")(self.snapshot)
        app.timer(1.0, name="idle")(self.release_if_idle)
        app.timer(5.0, name="watchdog")(self.check_recovery)
        if stream_metrics is not None:
            app.sensors.add(StreamSensor(stream_metrics))
            app.timer(LAG_EVERY, name="lag")(self.read_lag)
        app.on_partitions_revoked.connect(self.revoked)  # type: ignore[arg-type]
        app.before_stop = self.checkpoint

    async def locate(self) -> None:
        """The locate stage, for the app's life: detections in, located and rejects out."""
        try:
            clients = locate_clients(self.worker, self.stream_metrics)
            await run_locate(self.worker, *clients, metrics=self.stream_metrics)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker cannot go on without its input: stop it loudly
            log.exception("%s: the locate stage failed", self.topics.detections)
            await self.app.crash(exc)

    async def follow_masks(self) -> None:
        """The closed-loop masks topic, from its start, into every region's engine."""
        consumer = reader(self.settings.kafka_bootstrap, self.topics.masks)
        masks = self.worker.masks
        try:
            await follow_masks(consumer, self.topics.masks, self.worker.set_masks, masks.ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # without the masks a worker would open what they suppress
            log.exception("%s: following the closed-loop masks failed", self.topics.masks)
            await self.app.crash(exc)

    async def take_located(self, stream: Any) -> None:
        """The incidents stage: located messages in, incident events out, in batches."""
        worker, checkpoints = self.worker, self.checkpoints
        checkpoints.stream = stream
        if not worker.masks.ready.is_set():  # what a false alarm suppresses, before any input
            await worker.masks.ready.wait()
        async for given in stream.noack_take(INCIDENT_BATCH, within=WITHIN):
            # input as it is given (progress markers are not), before any wait: the idle
            # release must not run between its arrival and its processing
            if any(e.key != MARKER for e in given):
                worker.last_input = worker.timer()
            batch = await self.continuity.admit(given)
            touched: set[bytes] = set()
            sent: list[Awaitable[Any]] = []
            for partition, group in _by_partition(batch).items():
                records = [(e.key, e.value) for e in group]
                events, regions = worker.incidents(partition, records, checkpoints.saved)
                sent += await self.publish(events)
                touched |= regions
            checkpoints.took(batch, touched, sent)
            # a rebalance or shutdown waits for these messages to be acked: do it at once
            app = self.app
            if app.should_stop or app.rebalancing:
                await self.checkpoint()
            elif checkpoints.is_due(worker.timer()):
                self.checkpoint_soon()

    def checkpoint_soon(self) -> None:
        """A checkpoint in a task of its own, unless one is under way: the stage goes on taking
        while the broker acknowledges the snapshots and events (what it takes meanwhile belongs
        to the next one). Awaited in the stage, a checkpoint held every located message behind it
        for its round trip: 8 ms at the median, up to 200 ms (bench_stream, 2026-12-05)."""
        if self._checkpointing is None or self._checkpointing.done():
            self._checkpointing = asyncio.ensure_future(self.checkpoint())

    async def checkpoint(self) -> None:
        """A checkpoint (checkpoint.py); one the broker did not take, or that failed in any
        other way, stops the worker (its successor resumes from the last one)."""
        try:
            await self.checkpoints.checkpoint()
        except NotDelivered as exc:
            log.error("%s: checkpoint failed: %s; stopping", self.topics.located, exc)
            await self.app.crash(exc)
        except Exception as exc:  # in a task of its own (checkpoint_soon): nobody else would see it
            log.exception("%s: checkpoint failed; stopping", self.topics.located)
            await self.app.crash(exc)

    async def snapshot(self) -> None:
        checkpoints = self.checkpoints
        if checkpoints.dirty and checkpoints.is_due(self.worker.timer()):
            await self.checkpoint()

    async def release_if_idle(self) -> None:
        """Release every region to its latest event time once the input has ended (see the
        module: idle for `idle_release` s, and the broker said lately that nothing is left)."""
        worker = self.worker
        if self.app.rebalancing:  # revoking, assigning or recovering: input paused, not ended
            worker.last_input = worker.timer()
        if not idle(worker, worker.timer(), self.idle_release):
            return
        if not await self.located_read_out():  # located messages left: the stream goes on
            return
        # input may have come while the broker was asked: the stage took it meanwhile (a CI
        # run's first records, 2026-12-04: released at once, the next ones were late)
        if not idle(worker, worker.timer(), self.idle_release):
            return
        worker.load_all(self.checkpoints.table.data)
        events, touched = worker.release_idle()
        # saved, and the events awaited, as any batch's: one the broker does not take stops the
        # worker, whose successor releases again (the same events: their ids are deterministic)
        self.checkpoints.took((), touched, await self.publish(events))
        await self.checkpoint()

    async def committed(self, partitions: set[int]) -> dict[int, int]:
        """The offsets the incidents stage's group committed on these located partitions (asked
        again while the broker does not answer: nothing is taken until it does)."""
        settings, delay = self.settings, 0.5
        while True:
            try:
                return await committed_offsets(
                    settings.kafka_bootstrap, settings.kafka_group, self.topics.located, partitions
                )
            except (ClientError, KafkaError) as exc:  # the client's, or unreachable (topics.py)
                log.warning(
                    "%s%s: committed offsets not known (%r); asking again in %.1f s",
                    *(self.topics.located, sorted(partitions), exc, delay),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def earliest(self, partitions: set[int]) -> dict[int, int]:
        """The first offset each of these located partitions still has."""
        tps = [TP(self.topics.located, p) for p in partitions]
        found = await self.app.consumer.earliest_offsets(*tps)
        return {tp.partition: offset for tp, offset in found.items()}

    async def seek(self, offsets: dict[int, int]) -> None:
        """The Faust consumer reads these located partitions from these offsets next."""
        await self.app.consumer.seek_wait(
            {TP(self.topics.located, p): o for p, o in offsets.items()}
        )

    async def located_read_out(self) -> bool:
        """Whether the incidents stage has taken every located message of its partitions, up to
        the ends the broker gives now (False when it does not answer). Not the ends its consumer
        last fetched: a successor's locate stage may still be forwarding a backlog it has not
        fetched (a kill test released mid-stream that way)."""
        consumer: Any = self.app.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic == self.topics.located]
        if not assigned:  # not yet in the group, or between assignments: nothing to release
            return False
        try:
            ends = await consumer.highwaters(*assigned)
        except ClientError as exc:
            log.warning("%s: end offsets not known (%r); not idle", self.topics.located, exc)
            return False
        return read_out(self.continuity.taken, {tp.partition: end for tp, end in ends.items()})

    async def check_recovery(self) -> None:
        stalled = self.watch.check(self.worker.timer())
        if stalled:
            log.error(
                "%s: %s; exiting (%d) to be started again", self.app.conf.id, stalled, EXIT_STALLED
            )
            logging.shutdown()
            os._exit(EXIT_STALLED)  # safe at any moment; Faust's own shutdown may wait for ever

    async def revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == self.topics.located}
        self.continuity.forget(gone)  # its new owner, or this worker again, takes from the commit
        self.checkpoints.drop(gone)
        self.worker.forget(gone)

    async def read_lag(self) -> None:
        assert self.stream_metrics is not None
        await faust_lag(self.app, self.topics.located, self.stream_metrics)

    def producer_failed(self) -> BaseException | None:
        """Why Faust's producer buffer stopped (a send it could not make), None while it runs:
        the changelog's and the incident events' sends after that would never complete."""
        buffer = self.app.producer.buffer
        if not buffer.crashed:
            return None
        return buffer.crash_reason or RuntimeError("Faust's producer buffer crashed")

    async def publish(self, events: list[Event]) -> list[Awaitable[Any]]:
        """Each event keyed by what it is about (model.event_key), handed to the producer at
        once, in order: their deliveries. Not through Faust's buffer (`send_soon`), which its
        task drains a message an event-loop turn: behind a busy stage, an event waited there 10
        ms at the median and 100 ms at the 99th percentile (bench_stream, 2026-12-05)."""
        producer, topic = self.app.producer, self.topics.incidents
        async with self._publishing:  # the agent's and the idle release's, each in one piece
            return [
                await producer.send(
                    topic, event_key(e).encode(), e.model_dump_json().encode(), None, None, None
                )
                for e in events
            ]


def idle(worker: Worker, now: float, idle_release: float) -> bool:
    """Whether the input has ended for the idle release: no detection for `idle_release` s, and
    the broker said within READ_OUT_FRESH s that every detection partition is read to its end."""
    return now - worker.last_input >= idle_release and now - worker.read_out_at <= READ_OUT_FRESH


def read_out(taken: dict[int, int], ends: dict[int, int]) -> bool:
    """Whether every located partition's messages were taken up to its end offset (`taken`: the
    offset after the last one taken). A partition with messages and none taken since it was
    assigned is not read out, though they may all be before its committed offset: markers, or
    a heartbeat, come to every located partition each second and settle it. Without this, a
    worker restarted after the input ended, which reads the detections out at once while its
    incidents stage has not taken its backlog, released every region before it (every record of
    the backlog late)."""
    return all(taken.get(p, 0) >= end for p, end in ends.items())


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def _by_partition(batch: Sequence[Any]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for event in batch:
        groups[event.message.partition].append(event)
    return groups
