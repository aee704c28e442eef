"""`firewatch worker`: the engine as Faust agents between Kafka topics.

    firewatch.detections --locate--> firewatch.located (keyed by region) --incidents-->
        firewatch.incidents (keyed by incident id)          bad records -> firewatch.rejects

Both agents take whole batches and call the one engine: `locate` validates (rejects go to the
dead-letter topic with their partition and offset) and finds each detection's region; `incidents`
runs one Engine per region, whose state is saved after every batch in a Faust table (changelog
backed), so a restarted or rebalanced worker resumes where the old owner stopped.

Event time across partitions: a located partition holds records of every detection partition,
interleaved. `locate` therefore sends, after each batch, a progress marker per detection partition
(the latest event time it has forwarded from it) to every located partition; `incidents` processes
with `hold=True` and moves each region's watermark to the least advanced detection partition, so
no record looks late merely because another partition ran ahead. When no input has arrived for
`idle_release` seconds, every region is released to its latest event time (liveness at the end of
a stream; what a replay's flush does).

Delivery is at least once; incident event ids are deterministic, so consumers dedup by them.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from firewatch.engine.core import Engine
from firewatch.ingest.validate import validate_lines
from firewatch.model import IncidentEvent, Reject
from firewatch.settings import Settings
from firewatch.stream.topics import Topics

log = logging.getLogger(__name__)
BATCH = 2000
WITHIN = 0.2  # seconds a batch waits to fill
MARKER = b"\x00progress"  # key of progress markers on the located topic


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def reject_record(reject: Reject, topic: str, partition: int, raw: bytes) -> bytes:
    """A dead letter: the original bytes, the reason, and where the record was."""
    return orjson.dumps(
        {
            "topic": topic,
            "partition": partition,
            "offset": reject.offset,
            "reason": reject.reason.value,
            "field": reject.field,
            "message": reject.message,
            "raw": raw.decode("utf-8", errors="replace"),
        }
    )


def pack_state(partition: int, engine: Engine) -> bytes:
    """A region's table value: its located partition, then its engine snapshot compressed."""
    return b"%d:" % partition + zlib.compress(engine.snapshot(), 1)


def unpack_state(blob: bytes) -> tuple[int, bytes]:
    head, _, body = blob.partition(b":")
    return int(head), zlib.decompress(body)


class Worker:
    """The agents' state and logic, apart from Faust's wiring (so tests can drive it)."""

    def __init__(self, settings: Settings, make_engine: Callable[[], Engine]) -> None:
        self.settings = settings
        self.topics = Topics.of(settings)
        self.make_engine = make_engine
        self.locator = make_engine()  # stateless use: validation rules, grid, regions
        self.forwarded: dict[int, float] = {}  # detection partition -> latest event time sent
        self.progress: dict[int, dict[int, float]] = defaultdict(dict)  # located p -> source -> t
        self.engines: dict[bytes, tuple[int, Engine]] = {}  # region -> (located partition, engine)
        self.last_input = time.monotonic()
        self.counts: Counter[str] = Counter()  # records rejected, outside, located

    # -- locate -------------------------------------------------------------------------------
    def locate(
        self, partition: int, values: Sequence[bytes], offsets: Sequence[int]
    ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """One detection partition's batch: (region key, envelope of that region's detections)
        messages to forward, and dead letters."""
        topic = self.topics.detections
        detections, kept, rejects = validate_lines(
            list(values), f"{topic}[{partition}]", first_line=None, offsets=list(offsets)
        )
        by_offset = dict(zip(offsets, values, strict=True))
        dead = [
            reject_record(r, topic, partition, by_offset[r.offset] if r.offset is not None else b"")
            for r in rejects
        ]
        routed: dict[str, list[str]] = defaultdict(list)
        for i, region in zip(kept, self.locator.regions(detections), strict=True):
            if region is None:
                self.counts["outside"] += 1  # outside every cell: nothing to route it to
                continue
            routed[region].append(values[i].decode())
        # one message per region and batch: Kafka's per-message cost, not per detection
        out = [(r.encode(), orjson.dumps({"p": partition, "d": ds})) for r, ds in routed.items()]
        self.counts.update(rejected=len(rejects), located=sum(len(ds) for ds in routed.values()))
        if detections:  # a batch of nothing but bad records tells nothing of event time
            newest = max(d["observed_at"].timestamp() for d in detections)
            self.forwarded[partition] = max(self.forwarded.get(partition, newest), newest)
        return out, dead

    def markers(self) -> list[bytes]:
        return [orjson.dumps({"p": p, "t": t}) for p, t in sorted(self.forwarded.items())]

    # -- incidents ----------------------------------------------------------------------------
    def engine_for(self, region: bytes, partition: int, saved: bytes | None) -> Engine:
        held = self.engines.get(region)
        if held is not None and held[0] == partition:
            return held[1]
        engine = self.make_engine()
        if saved:
            engine.restore(unpack_state(saved)[1])
        self.engines[region] = (partition, engine)
        return engine

    def load_all(self, table: MutableMapping[bytes, bytes]) -> None:
        """Restore every region of the table not yet in memory (after a restart)."""
        for region, blob in list(table.items()):
            if blob and region not in self.engines:
                partition, data = unpack_state(blob)
                engine = self.make_engine()
                engine.restore(data)
                self.engines[region] = (partition, engine)

    def forget(self, partitions: set[int]) -> None:
        """Partitions taken away by a rebalance: their state lives on in the table."""
        for region in [r for r, (p, _) in self.engines.items() if p in partitions]:
            del self.engines[region]
        for p in partitions:
            self.progress.pop(p, None)

    def incidents(
        self,
        partition: int,
        records: Sequence[tuple[bytes, bytes]],
        saved: Callable[[bytes], bytes | None],
    ) -> tuple[list[IncidentEvent], dict[bytes, bytes]]:
        """One located partition's batch: incident events, and the new state of each region."""
        by_region: dict[bytes, list[bytes]] = defaultdict(list)
        for key, value in records:
            envelope = orjson.loads(value)
            if key == MARKER:
                seen = self.progress[partition]
                seen[envelope["p"]] = max(seen.get(envelope["p"], float("-inf")), envelope["t"])
            else:
                by_region[key].extend(d.encode() for d in envelope["d"])
        events: list[IncidentEvent] = []
        touched: set[bytes] = set()
        for region, lines in by_region.items():
            engine = self.engine_for(region, partition, saved(region))
            detections, _, _ = validate_lines(lines, "located", first_line=None)
            events += engine.process(detections, hold=True)
            touched.add(region)
        watermark = self.watermark(partition)
        for region, (p, engine) in self.engines.items():
            if p == partition and watermark is not None:
                released = engine.advance(watermark)
                if released:
                    events += released
                    touched.add(region)
        states = {r: pack_state(partition, self.engines[r][1]) for r in touched}
        return events, states

    def watermark(self, partition: int) -> datetime | None:
        """The least advanced detection partition's progress, once every one has reported."""
        seen = self.progress.get(partition, {})
        if len(seen) < self.topics.partitions:
            return None
        return datetime.fromtimestamp(min(seen.values()), UTC)

    def release_idle(self) -> tuple[list[IncidentEvent], dict[bytes, tuple[int, bytes]]]:
        """No input for a while: release every region to the latest event time of the stream, as
        a replay's flush does (a region's own latest may be hours older)."""
        events: list[IncidentEvent] = []
        states: dict[bytes, tuple[int, bytes]] = {}
        known = [t for seen in self.progress.values() for t in seen.values()]
        last = datetime.fromtimestamp(max(known), UTC) if known else None
        for region, (p, engine) in self.engines.items():
            released = engine.flush(last)
            if released:
                events += released
                states[region] = (p, pack_state(p, engine))
        return events, states


def build_app(
    settings: Settings, make_engine: Callable[[], Engine], idle_release: float = 5.0
) -> faust.App:
    topics = Topics.of(settings)
    parts = topics.partitions
    app = faust.App(
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
        key_serializer="raw",  # every topic and the table's changelog carry bytes as they are
        value_serializer="raw",
    )
    worker = Worker(settings, make_engine)
    detections = _raw_topic(app, topics.detections, parts)
    located = _raw_topic(app, topics.located, parts)
    incidents = _raw_topic(app, topics.incidents, parts)
    rejects = _raw_topic(app, topics.rejects, parts)
    state = app.Table(
        "engine-state", key_type=bytes, value_type=bytes, partitions=parts, default=None
    )

    @app.agent(detections)
    async def locate(stream: Any) -> None:
        async for batch in stream.take_events(BATCH, within=WITHIN):
            worker.last_input = time.monotonic()
            for partition, group in _by_partition(batch).items():
                values = [e.value for e in group]
                offsets = [e.message.offset for e in group]
                out, dead = worker.locate(partition, values, offsets)
                for key, value in out:
                    located.send_soon(key=key, value=value)
                for value in dead:
                    rejects.send_soon(value=value)
            for marker in worker.markers():
                for q in range(parts):
                    located.send_soon(key=MARKER, value=marker, partition=q)

    @app.agent(located)
    async def incident_agent(stream: Any) -> None:
        async for batch in stream.take_events(BATCH, within=WITHIN):
            worker.last_input = time.monotonic()
            for partition, group in _by_partition(batch).items():
                records = [(e.key, e.value) for e in group]
                events, states = worker.incidents(partition, records, state.data.get)
                _publish(incidents, events)
                for region, blob in states.items():
                    state.data[region] = blob
                    state.send_changelog(partition, region, blob)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def idle() -> None:
        if time.monotonic() - worker.last_input < idle_release:
            return
        worker.load_all(state.data)
        events, states = worker.release_idle()
        _publish(incidents, events)
        for region, (partition, blob) in states.items():
            state.data[region] = blob
            state.send_changelog(partition, region, blob)

    async def revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        worker.forget({tp.partition for tp in revoked if tp.topic == topics.located})

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]

    return app


def _publish(topic: Any, events: list[IncidentEvent]) -> None:
    for e in events:
        topic.send_soon(key=e.incident_id.encode(), value=e.model_dump_json().encode())


def _by_partition(batch: Sequence[Any]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for event in batch:
        groups[event.message.partition].append(event)
    return groups
