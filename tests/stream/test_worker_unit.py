"""The worker's batch logic without a broker: dead letters, routing, progress, held release."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import faust
import orjson
import pytest
import shapely
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from shapely.geometry import Point

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.metrics import StreamMetrics
from firewatch.model import EventKind
from firewatch.rules.model import Circle, Mask, MaskReason
from firewatch.settings import Settings
from firewatch.stream import wire
from firewatch.stream.locate import Commits, run_locate
from firewatch.stream.stages import MARKER, Worker, pack_state, unpack_state
from firewatch.stream.watchdog import RecoveryWatch
from firewatch.stream.worker import FaustWorker, faust_app

from ..engine.conftest import T0, camera, sensor
from ..engine_fixtures import collections_seen

BAD = [
    (b"\xff\xfe garbage", "malformed_json"),
    (b'{"source": "camera", "device_id": "c"', "malformed_json"),
    (orjson.dumps({**camera("c", 0, 0.9), "lat": 123.0}), "bad_coordinate"),
    (orjson.dumps({k: v for k, v in camera("c", 0, 0.9).items() if k != "label"}), "missing_field"),
]


NOW = T0 + timedelta(days=1)  # the worker's clock: a day after the detections of these tests


@pytest.fixture
def worker(make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> Worker:
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "2")
    return Worker(Settings.from_env(os.environ), make_engine, FakeClock(NOW), quiet_after=10)


def test_bad_records_become_dead_letters_and_the_rest_is_routed(worker: Worker) -> None:
    good = [orjson.dumps(camera("c", 0, 0.9)), orjson.dumps(sensor("s", 1, temp=20))]
    outside = orjson.dumps({**camera("far", 2, 0.9), "lat": 10.0})
    # None: a message without a value (a tombstone); b"  ": nothing but whitespace
    bad = [*BAD[:2], (None, "malformed_json"), (b"  ", "malformed_json"), *BAD[2:]]
    values = [*(v for v, _ in bad), good[0], good[1], outside]
    offsets = list(range(len(values)))  # the first bad record sits at offset 0
    out, dead = worker.locate(3, values, offsets)
    letters = [orjson.loads(d) for d in dead]
    assert [d["reason"] for d in letters] == [reason for _, reason in bad]
    assert [d["message"] for d in letters][2:4] == ["empty message value"] * 2
    assert [d["offset"] for d in letters] == offsets[: len(bad)]
    assert all(d["partition"] == 3 and d["topic"] == worker.topics.detections for d in letters)
    assert [d["raw"] for d in letters] == [(v or b"").decode(errors="replace") for v, _ in bad]
    assert [k for k, _ in out] == [b"test"]  # the grid's one district: one message
    located = wire.decode(out[0][1])  # the two good records, in columns, their cell found
    records = [orjson.loads(g) for g in good]
    assert located.cols.lat.tolist() == [r["lat"] for r in records]
    geoms = worker.locator.grid.geoms  # the cell each lies in, by the polygons themselves
    assert located.cell.tolist() == [
        next(i for i, g in enumerate(geoms) if shapely.intersects(g, Point(r["lon"], r["lat"])))
        for r in records
    ]
    assert sorted(located.signals) == [0]  # the camera's 0.9 (the sensor's 20 C is no fire)
    assert worker.counts == {"rejected": len(bad), "outside": 1, "located": 2}
    assert list(orjson.loads(worker.marker() or b"{}")) == ["3"]


def test_located_messages_of_an_earlier_version_are_still_read(worker: Worker) -> None:
    """A rolling upgrade: the located topic holds JSON lines sent by the earlier locate stage."""
    lines = [orjson.dumps(camera("c", 0, 0.9)), orjson.dumps(sensor("s", 1, temp=20))]
    earlier = [(b"test", b"\n".join(lines))]
    now, _ = worker.locate(0, [orjson.dumps(camera("c2", 2, 0.95))], [0])
    _, touched = worker.incidents(0, [*earlier, *now], lambda region: None)
    assert touched == {b"test"}
    engine = worker.engines[b"test"][1]
    assert engine.stats.records == 3 and engine.stats.as_dict()["outcomes"]["incident"] == 2


def test_nothing_is_released_until_every_source_partition_has_reported(worker: Worker) -> None:
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    events, touched = worker.incidents(0, out, lambda region: None)
    assert events == [] and touched == {b"test"}  # held: partition 1 has not reported
    marker = [(MARKER, orjson.dumps({"1": 10**10}))]
    worker.locate(0, [orjson.dumps(sensor("s", 30, temp=20))], [1])  # source 0 moves on
    events, _ = worker.incidents(0, [*marker, (MARKER, worker.marker() or b"")], lambda r: None)
    assert [e.event for e in events] == [EventKind.OPENED]


def test_state_round_trips_through_the_table_value(worker: Worker, tmp_path: Path) -> None:
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    _, touched = worker.incidents(1, out, lambda region: None)
    states = worker.states(touched)
    assert states[b"test"][0] == 1
    partition, snapshot = unpack_state(states[b"test"][1])
    assert partition == 1
    engine = worker.make_engine()
    engine.restore(snapshot)
    assert pack_state(1, engine) == states[b"test"][1]
    worker.forget({1})
    assert worker.engines == {} and worker.states(touched) == {}  # revoked: nothing to save


def test_a_batch_of_only_bad_records_reports_no_progress(worker: Worker) -> None:
    out, dead = worker.locate(1, [v for v, _ in BAD], [0, 1, 2, 3])
    assert out == [] and len(dead) == len(BAD)
    assert worker.marker() is None  # no event time seen on partition 1: nothing to claim
    worker.locate(1, [orjson.dumps(camera("c", 5, 0.9))], [4])
    assert list(orjson.loads(worker.marker() or b"{}")) == ["1"]
    worker.forget_sources({1})  # partition 1 moved to another worker, which reports it now
    assert worker.marker() is None


def test_garbled_located_messages_are_skipped_and_the_rest_processed(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    """Only `locate` writes the located topic; whatever else lands there must not stop a worker."""
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    garbled = [
        (MARKER, b"\xff not json"),
        (MARKER, b"[1, 2]"),
        (MARKER, orjson.dumps({"x": "y"})),
        (b"test", b""),
        (b"", b'{"a": 1}'),
        (b"test", b'{"source": "camera"}'),  # a record no stage should have forwarded
    ]
    events, touched = worker.incidents(0, [*garbled, *out], lambda region: None)
    assert touched == {b"test"} and worker.progress[0] == {}
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == len(garbled)
    assert "located" in caplog.text and "[0]" in caplog.text
    marker = [(MARKER, orjson.dumps({"0": 10**10, "1": 10**10}))]
    events, _ = worker.incidents(0, marker, lambda region: None)
    assert [e.event for e in events][:1] == [EventKind.OPENED]  # the valid detection was kept


class Record(NamedTuple):
    value: bytes | None
    offset: int
    timestamp: int = 0


class Drained(Exception):
    """The fake consumer has nothing more: ends run_locate's loop."""


class FakeClient:
    stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True


class FakeConsumer(FakeClient):
    """getmany hands out the queued batches; seek queues the partition again from an offset."""

    def __init__(self, tp: TopicPartition, records: list[Record]) -> None:
        self.records = {tp: records}
        self.queue = [{tp: records}]
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Record]]:
        if not self.queue:
            raise Drained
        return self.queue.pop(0)

    def assignment(self) -> set[TopicPartition]:
        return set(self.records)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None  # not known from a fetch: run_locate asks end_offsets

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.records[tp][-1].offset + 1 for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.records[tp][0].offset  # behind its end: never quiet here

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.queue.append({tp: [r for r in self.records[tp] if r.offset >= offset]})

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


class FlakyProducer(FakeClient):
    """Refuses the first `failures` sends (as when the broker is away), then delivers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, bytes | None, bytes, int | None]] = []

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError("broker unreachable")
        self.sent.append((topic, key, value, partition))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_a_batch_not_delivered_is_read_again_and_committed_only_once_delivered(
    worker: Worker,
) -> None:
    tp = TopicPartition(worker.topics.detections, 1)
    records = [Record(orjson.dumps(camera("c", 0, 0.9)), 40), Record(b"garbage", 41)]
    consumer, producer = FakeConsumer(tp, records), FlakyProducer(failures=1)
    with pytest.raises(Drained):
        asyncio.run(run_locate(worker, consumer, producer, retry_after=0))
    assert consumer.commits == [{tp: 42}]  # once, after the second, delivered attempt
    topics = [t for t, _, _, _ in producer.sent]
    located, rejects = worker.topics.located, worker.topics.rejects
    assert topics == [located, rejects, located, located]  # region message, dead letter, markers
    assert [q for _, k, _, q in producer.sent if k == MARKER] == [0, 1]  # every located partition
    assert orjson.loads(producer.sent[1][2])["offset"] == 41
    assert consumer.stopped and producer.stopped


def test_dead_letters_keep_non_utf8_bytes_exactly_and_cut_huge_records(worker: Worker) -> None:
    limit = worker.settings.max_line_bytes
    binary, huge = b"\xff\x00\xfe garbage", b"x" * (limit * 3)
    _, dead = worker.locate(0, [binary, huge], [7, 8])
    first, second = (orjson.loads(d) for d in dead)
    assert base64.b64decode(first["raw_base64"]) == binary and first["size"] == len(binary)
    assert second["reason"] == "oversized_line" and second["truncated"] is True
    assert second["size"] == len(huge) and second["raw"] == "x" * limit
    assert "raw_base64" not in second  # plain text needs no second copy


def test_a_read_out_partition_claims_only_what_was_appended_quiet_after_earlier(
    worker: Worker,
) -> None:
    """Claims go by the records' Kafka timestamps, never by when they were fetched."""
    assert worker.marker({0, 1, 2}) is None  # idle before input: nothing to tell, nothing claimed
    # ... but with the topic's partition count, read-out partitions send a heartbeat: the
    # incidents stage takes it and knows it has taken its partitions to their end (idle release)
    assert orjson.loads(worker.marker({0, 1, 2}, sources=3) or b"{}") == {"n": 3}
    assert worker.marker(set(), sources=3) is None  # none read out: no heartbeat either
    worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0], [100_000])
    # partitions 1 and 2 read to their end, but what partition 0 sent was appended just now:
    # records on its way to them may be as old, so nothing is claimed for them yet
    assert set(orjson.loads(worker.marker({1, 2}) or b"{}")) == {"0"}
    worker.locate(0, [orjson.dumps(camera("c", 30, 0.9))], [1], [105_000])
    assert set(orjson.loads(worker.marker({1, 2}) or b"{}")) == {"0"}  # 5 s later: still not
    worker.locate(0, [orjson.dumps(camera("c", 60, 0.9))], [2], [110_000])
    claimed = orjson.loads(worker.marker({1, 2}) or b"{}")
    first = (T0 + timedelta(minutes=0)).timestamp()
    latest = (T0 + timedelta(minutes=60)).timestamp()
    # 10 s after the first batch was appended: its event time, not the latest, is claimable
    assert claimed == {"0": latest, "1": first, "2": first}
    assert orjson.loads(worker.marker() or b"{}") == {"0": latest}  # nothing read out: no claim
    worker.forget_sources({0})
    assert set(orjson.loads(worker.marker({2}) or b"{}")) == {"2"}  # claim outlives the owner


def test_a_future_record_is_rejected_and_moves_no_progress(worker: Worker) -> None:
    """A sensor whose clock says 2099: a dead letter `future_timestamp`, and the progress its
    partition reports stays where the honest records put it."""
    honest = orjson.dumps(sensor("s", 30, temp=20))
    broken = orjson.dumps({**sensor("s2", 0, temp=20), "observed_at": "2099-01-01T00:00:00+00:00"})
    out, dead = worker.locate(0, [honest, broken], [0, 1], [1, 1])
    assert [orjson.loads(d)["reason"] for d in dead] == ["future_timestamp"]
    assert wire.decode(out[0][1]).cols.t.tolist() == [(T0 + timedelta(minutes=30)).timestamp()]
    assert orjson.loads(worker.marker() or b"{}") == {"0": (T0 + timedelta(minutes=30)).timestamp()}


def test_a_marker_ahead_of_the_clock_is_cut_to_the_bound(worker: Worker) -> None:
    """A locate stage of an earlier version (or with a wrong clock) sent 2099: the incidents
    stage takes at most now + max_future, so one bad marker cannot close every incident."""
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    far = orjson.dumps({"0": 4_070_908_800.0, "1": 4_070_908_800.0})  # 2099-01-01
    events, _ = worker.incidents(0, [*out, (MARKER, far)], lambda region: None)
    assert [e.event for e in events] == [EventKind.OPENED]  # released, but not closed
    bound = (NOW + worker.max_future).timestamp()
    assert worker.progress[0] == {0: bound, 1: bound}


def test_saved_state_ahead_of_the_clock_is_repaired_on_restore(
    worker: Worker, make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """State written by an earlier version that let a 2099 record move the watermark."""
    broken = make_engine()
    broken.process_lines(
        [orjson.dumps({**camera("c", 0, 0.9), "observed_at": "2099-01-01T00:00:00+00:00"})], "old"
    )
    saved = pack_state(0, broken)
    engine = worker.engine_for(b"test", 0, saved)
    assert "ahead of the clock, repaired" in caplog.text and "region test" in caplog.text
    opened = engine.process_lines([orjson.dumps(camera("d", 60, 0.9))], "new").events
    assert [e.event for e in opened + engine.flush()] == [EventKind.OPENED]


def test_closed_loop_masks_reach_held_and_new_engines(worker: Worker) -> None:
    mask = Mask(
        name="false-alarm-ord-1",
        reason=MaskReason.KNOWN_HEAT_SOURCE,
        circle=Circle(lat=camera("c", 0, 0.9)["lat"], lon=camera("c", 0, 0.9)["lon"], radius_m=300),
    )
    held = worker.engine_for(b"test", 0, None)
    worker.masks.ready.set()
    worker.set_masks({mask.name: mask})
    assert mask in held.masks
    fresh = worker.engine_for(b"other", 1, None)
    assert mask in fresh.masks
    worker.set_masks({mask.name: None})  # a tombstone: `masks remove`
    assert mask not in held.masks and mask not in worker.engine_for(b"other", 1, None).masks


def test_markers_say_how_many_detection_partitions_a_watermark_waits_for(worker: Worker) -> None:
    """Configured for 2 partitions, the detections topic has 1: the markers' count wins."""
    out, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.9))], [0])
    worker.locate(0, [orjson.dumps(sensor("s", 30, temp=20))], [1])
    events, _ = worker.incidents(0, [*out, (MARKER, worker.marker())], lambda region: None)
    assert events == []  # waits for a partition 1 that does not exist
    marker = worker.marker(sources=1) or b""
    assert orjson.loads(marker)["n"] == 1
    events, _ = worker.incidents(0, [(MARKER, marker)], lambda region: None)
    assert [e.event for e in events] == [EventKind.OPENED]


class FakeRecovery:
    """What RecoveryWatch reads of Faust's Recovery."""

    def __init__(self) -> None:
        self.in_recovery = False
        self.active_offsets: dict[TopicPartition, int] = {}
        self.highwaters: dict[TopicPartition, int] = {}

    def active_remaining(self) -> dict[TopicPartition, int]:
        return {tp: hw - self.active_offsets.get(tp, -1) for tp, hw in self.highwaters.items()}


def test_a_recovery_without_progress_is_stalled_after_the_limit_and_progress_resets_it() -> None:
    recovery, tp = FakeRecovery(), TopicPartition("app-engine-state-changelog", 1)
    watch = RecoveryWatch(recovery, after=20)
    assert watch.check(0) is None  # not recovering
    recovery.in_recovery, recovery.highwaters, recovery.active_offsets = True, {tp: 9}, {tp: 3}
    assert watch.check(1) is None and watch.check(20) is None  # stuck, not for long yet
    recovery.active_offsets = {tp: 5}  # progress: the clock starts again
    assert watch.check(25) is None and watch.check(44) is None
    stalled = watch.check(46)
    assert stalled == (
        "table recovery made no progress for 21 s (app-engine-state-changelog[1]: 4 to read)"
    )
    recovery.active_offsets = {tp: 9}  # all read: waiting on nothing is no stall
    assert watch.check(100) is None and watch.check(200) is None
    recovery.in_recovery = False
    assert watch.check(300) is None


def test_the_locate_stage_meets_no_collection_on_the_way(worker: Worker) -> None:
    # as Engine.process_lines (tests/engine/test_future.py): the collector stays paused from the
    # batch's first value to its located messages, and is back on after
    values = [orjson.dumps(sensor(f"s{i % 40}", i / 10, temp=20.0)) for i in range(3000)]

    with collections_seen() as collections:
        out, dead = worker.locate(0, values, list(range(len(values))))

    assert collections == []
    assert gc.isenabled()
    assert dead == [] and sum(len(wire.decode(m)) for _, m in out) == len(values)


def test_each_line_of_a_message_of_several_gets_its_own_verdict(worker: Worker) -> None:
    """A packed message (stream/pack.py): a bad line is a dead letter naming the message's offset
    and its line within it; blank lines are skipped; the good lines around it are located."""
    limit = worker.settings.max_line_bytes
    good = [orjson.dumps(camera("c", 0, 0.9)), orjson.dumps(sensor("s", 1, temp=20))]
    alone = orjson.dumps(sensor("t", 2, temp=21))
    later = orjson.dumps(camera("d", 3, 0.95))
    huge = b"x" * (limit + 10)
    values = [
        b"\n".join([good[0], BAD[0][0], b"  ", good[1], BAD[2][0]]) + b"\n",  # offset 10
        alone,  # 11: one line, as a sensor sends it
        b"\n \n",  # 12: nothing but whitespace
        huge + b"\n" + later,  # 13
    ]
    out, dead = worker.locate(1, values, [10, 11, 12, 13])
    letters = [orjson.loads(d) for d in dead]
    assert [(d["offset"], d["line"], d["reason"]) for d in letters] == [
        (10, 2, "malformed_json"),
        (10, 5, "bad_coordinate"),
        (12, None, "malformed_json"),
        (13, 1, "oversized_line"),
    ]
    assert letters[0]["raw"] == BAD[0][0].decode(errors="replace")  # the line, not the message
    assert letters[1]["raw"] == BAD[2][0].decode()
    assert letters[2]["message"] == "empty message value"
    assert letters[3]["size"] == len(huge)
    located = wire.decode(out[0][1])
    expected = [orjson.loads(v) for v in (*good, alone, later)]
    assert located.cols.lat.tolist() == [r["lat"] for r in expected]
    assert located.device.tolist() == [r["device_id"] for r in expected]
    assert worker.counts == {"rejected": 4, "outside": 0, "located": 4}


def test_packed_lines_are_located_as_the_same_lines_one_per_message(
    make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packing changes where a line travels, not what becomes of it."""
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "2")
    settings = Settings.from_env(os.environ)
    lines = [orjson.dumps(camera(f"c{i}", i, 0.5 + i / 100)) for i in range(40)]
    lines += [orjson.dumps(sensor(f"s{i}", i, temp=15 + i)) for i in range(40)]
    lines[7], lines[50] = BAD[1][0], BAD[3][0]
    single = Worker(settings, make_engine, FakeClock(NOW))
    packed = Worker(settings, make_engine, FakeClock(NOW))
    one_out, one_dead = single.locate(0, lines, list(range(80)))
    messages = [b"\n".join(lines[:30]), b"\n".join(lines[30:31]), b"\n".join(lines[31:])]
    many_out, many_dead = packed.locate(0, messages, [0, 1, 2])
    a, b = wire.decode(one_out[0][1]), wire.decode(many_out[0][1])
    assert len(a) == len(b) == 78
    for column in ("t", "lat", "lon", "source"):
        assert getattr(a.cols, column).tolist() == getattr(b.cols, column).tolist()
    assert a.cell.tolist() == b.cell.tolist() and a.strength.tolist() == b.strength.tolist()
    assert sorted(a.signals) == sorted(b.signals) and len(a.signals) > 0
    one, many = ([orjson.loads(d) for d in dead] for dead in (one_dead, many_dead))
    assert [(d["reason"], d["raw"]) for d in one] == [(d["reason"], d["raw"]) for d in many]
    assert [(d["offset"], d["line"]) for d in one] == [(7, None), (50, None)]
    assert [(d["offset"], d["line"]) for d in many] == [(0, 8), (2, 20)]


class GatedConsumer:
    """Commits wait for the test's gate; the first `failures` fail as with the broker away."""

    def __init__(self, assigned: set[TopicPartition], failures: int = 0) -> None:
        self.assigned = assigned
        self.failures = failures
        self.gate = asyncio.Event()
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError("broker unreachable")
        self.commits.append(dict(offsets))


def test_commits_run_beside_the_stage_one_at_a_time_with_the_newest_offsets() -> None:
    """The locate stage hands a delivered batch's offsets to Commits and reads on: what is added
    while a commit is under way goes in the next one, each partition at its newest offset."""
    a, b = TopicPartition("detections", 0), TopicPartition("detections", 1)

    async def scenario() -> list[dict[TopicPartition, int]]:
        consumer = GatedConsumer({a, b})
        commits = Commits(consumer, "locate", lambda: 0.0)
        commits.add({a: 10})
        await asyncio.sleep(0)  # the first commit is under way, waiting for the broker
        commits.add({a: 20, b: 5})
        commits.add({a: 30})
        consumer.gate.set()
        await commits.settled()
        return consumer.commits

    assert asyncio.run(scenario()) == [{a: 10}, {a: 30, b: 5}]


def test_a_failed_commit_is_tried_again_with_the_next_but_not_for_a_partition_moved_away() -> None:
    a, b = TopicPartition("detections", 0), TopicPartition("detections", 1)
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)

    async def scenario() -> list[dict[TopicPartition, int]]:
        consumer = GatedConsumer({a, b}, failures=1)
        consumer.gate.set()
        commits = Commits(consumer, "locate", lambda: 0.0, metrics)
        commits.add({a: 10, b: 7})
        await commits.settled()  # failed: the broker away
        consumer.assigned = {a}  # a rebalance took b away meanwhile
        commits.add({a: 12})
        await commits.settled()
        return consumer.commits

    assert asyncio.run(scenario()) == [{a: 12}]
    assert registry.get_sample_value("firewatch_kafka_errors_total", {"operation": "commit"}) == 1


def test_the_worker_process_keeps_the_root_logger_at_its_level() -> None:
    """Faust's worker sets the root logger to DEBUG for its terminal spinner when the level asked
    for is WARNING (`firewatch worker`'s default): every debug call of aiokafka then made a log
    record. FaustWorker has no spinner, and the root logger keeps the level asked for."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    settings = Settings.from_env(os.environ)
    try:
        for cls, expected in ((faust.Worker, logging.DEBUG), (FaustWorker, logging.WARNING)):
            app = faust_app(settings)
            # its own stdout: Faust's spinner writes to it at the interpreter's exit
            worker = cls(app, loglevel="warning", redirect_stdouts=False, stdout=io.StringIO())
            worker._setup_logging()
            assert root.level == expected, cls
            debug = logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)
            assert debug is (cls is faust.Worker)
            app.loop.close()
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
