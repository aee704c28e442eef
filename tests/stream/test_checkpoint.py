"""The incidents stage's checkpoints and idle release, one step at a time, without a broker: a
table whose changelog records what is sent and answers when told to, a stream that records what
is acked."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.settings import Settings
from firewatch.stream.checkpoint import SPREAD, Checkpoints, NotDelivered
from firewatch.stream.stages import Worker, unpack_state
from firewatch.stream.worker import READ_OUT_FRESH, WorkerApp, idle, read_out

from ..engine.conftest import T0, camera

EVERY = 1.0  # seconds between checkpoints


class Store:
    """A table's local store: what apply_changelog_batch was given, by partition and offset."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}
        self.applied: list[tuple[int, int, bytes]] = []

    def items(self) -> Any:
        return self.rows.items()

    def apply_changelog_batch(self, batch: Any, to_key: Any, to_value: Any) -> None:
        for change in batch:
            self.rows[to_key(change.key)] = to_value(change.value)
            self.applied.append((change.message.partition, change.message.offset, change.key))


class Changelog:
    """A topic whose sends are futures the test resolves: as Faust's FutureMessage, done once the
    broker answered, the callback called with it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.futures: list[asyncio.Future[Any]] = []

    def send_soon(self, **kwargs: Any) -> asyncio.Future[Any]:
        self.sent.append(kwargs)
        self.futures.append(asyncio.get_running_loop().create_future())
        return self.futures[-1]

    def deliver(self, offset: int) -> None:
        """The broker has every message sent so far, from `offset` on."""
        for i, (message, future) in enumerate(zip(self.sent, self.futures, strict=True)):
            tp = SimpleNamespace(topic="changelog", partition=message["partition"])
            meta = SimpleNamespace(topic_partition=tp, offset=offset + i)
            future.set_result(meta)
            if "callback" in message:
                message["callback"](future)

    def refuse(self, error: Exception) -> None:
        for future in self.futures:
            future.set_exception(error)


class Stream:
    def __init__(self, on_ack: Callable[[], None] = lambda: None) -> None:
        self.acked: list[Any] = []
        self.on_ack = on_ack

    async def ack(self, event: Any) -> None:
        self.on_ack()
        self.acked.append(event)


def message(partition: int, offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset))


@pytest.fixture
def worker(make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> Worker:
    monkeypatch.setenv("FIREWATCH_KAFKA_PARTITIONS", "2")
    clock = FakeClock(T0 + timedelta(days=1))
    return Worker(Settings.from_env(os.environ), make_engine, clock, quiet_after=10)


@pytest.fixture
def table() -> Any:
    return SimpleNamespace(changelog_topic=Changelog(), data=Store())


def touch(worker: Worker, partition: int) -> set[bytes]:
    """A camera fire through the locate and incidents stages: the regions it changed."""
    located, _ = worker.locate(0, [orjson.dumps(camera("c", 0, 0.95))], [0])
    _, touched = worker.incidents(partition, located, lambda region: None)
    return touched


def test_a_checkpoint_acks_what_it_covers_once_the_broker_has_its_snapshots_and_events(
    worker: Worker, table: Any
) -> None:
    async def scenario() -> None:
        checkpoints = Checkpoints(worker, table, EVERY)
        checkpoints.stream = stream = Stream()
        touched = touch(worker, 1)
        taken = [message(1, 7), message(1, 8)]
        event = asyncio.get_running_loop().create_future()  # an incident event being sent
        checkpoints.took(taken, touched, [event])
        assert checkpoints.dirty and checkpoints.is_due(worker.timer())

        running = asyncio.create_task(checkpoints.checkpoint())
        await asyncio.sleep(0.05)
        sent = table.changelog_topic.sent
        assert [(m["key"], m["partition"]) for m in sent] == [(b"test", 1)]
        partition, snapshot = unpack_state(sent[0]["value"])
        restored = worker.make_engine()
        restored.restore(snapshot)
        assert partition == 1 and restored.snapshot() == worker.engines[b"test"][1].snapshot()
        assert not checkpoints.dirty and not checkpoints.is_due(worker.timer())
        assert stream.acked == [] and not running.done()  # the broker has not answered
        assert checkpoints.saved(b"test") is None  # the local store follows the broker's answer
        table.changelog_topic.deliver(offset=41)
        assert checkpoints.saved(b"test") == sent[0]["value"]
        assert table.data.applied == [(1, 41, b"test")]  # its partition and changelog offset
        await asyncio.sleep(0.05)
        assert stream.acked == [] and not running.done()  # the incident event is not delivered
        event.set_result(None)
        await running
        assert stream.acked == taken

    asyncio.run(scenario())


def test_a_snapshot_the_broker_refuses_acks_nothing(worker: Worker, table: Any) -> None:
    async def scenario() -> None:
        checkpoints = Checkpoints(worker, table, EVERY)
        checkpoints.stream = stream = Stream()
        checkpoints.took([message(1, 7)], touch(worker, 1))
        running = asyncio.create_task(checkpoints.checkpoint())
        await asyncio.sleep(0.05)
        table.changelog_topic.refuse(KafkaTimeoutError())
        with pytest.raises(NotDelivered, match=r"1 of 1 .* 1 located messages left unacked"):
            await running
        assert stream.acked == [] and checkpoints.saved(b"test") is None

    asyncio.run(scenario())


def test_what_is_taken_during_a_checkpoint_waits_for_the_next(worker: Worker, table: Any) -> None:
    async def scenario() -> None:
        checkpoints = Checkpoints(worker, table, EVERY)
        late = message(0, 3)
        checkpoints.stream = stream = Stream(on_ack=lambda: checkpoints.took([late], set()))
        checkpoints.took([message(0, 2)], touch(worker, 0))
        running = asyncio.create_task(checkpoints.checkpoint())
        await asyncio.sleep(0.01)
        table.changelog_topic.deliver(offset=0)
        await running
        assert late not in stream.acked and checkpoints.events == [late]

    asyncio.run(scenario())


def test_a_revoked_partition_s_messages_are_never_acked(worker: Worker, table: Any) -> None:
    checkpoints = Checkpoints(worker, table, EVERY)
    checkpoints.stream = stream = Stream()
    kept, revoked = message(0, 1), message(1, 1)
    checkpoints.took([kept, revoked], set())
    checkpoints.drop({1})
    asyncio.run(checkpoints.checkpoint())
    assert stream.acked == [kept]


def test_the_idle_release_needs_quiet_input_and_a_fresh_read_out(worker: Worker) -> None:
    worker.last_input, worker.read_out_at = 100.0, 104.0
    assert not idle(worker, 104.9, idle_release=5.0)  # input came 4.9 s ago
    assert idle(worker, 105.0, idle_release=5.0)
    assert idle(worker, 104.0 + READ_OUT_FRESH, idle_release=5.0)
    # the broker said "read to the end" too long ago: records may have come since
    assert not idle(worker, 104.0 + READ_OUT_FRESH + 0.1, idle_release=5.0)


def test_the_idle_release_waits_for_the_located_messages_left() -> None:
    """A worker restarted after the input ended reads the detections out at once, while its
    incidents stage may not have taken its backlog of located messages yet: not the end of the
    stream (a release then makes every one of them late: devices down that never were). The
    ends are the broker's now, not those the consumer last fetched (a successor's locate stage
    may still be forwarding its backlog)."""
    assert read_out({0: 120, 1: 7}, {0: 120, 1: 7})
    assert read_out({0: 121}, {0: 120})  # the end was asked before the last one arrived
    assert not read_out({0: 119, 1: 7}, {0: 120, 1: 7})  # one message of partition 0 left
    assert not read_out({1: 7}, {0: 120, 1: 7})  # nothing taken from 0 since it was assigned
    assert read_out({}, {0: 0})  # an empty partition
    assert read_out({}, {})  # nothing assigned


def test_checkpoints_take_at_most_a_tenth_of_the_stage_s_time(
    worker: Worker, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next checkpoint is due `every` seconds after the last began, or SPREAD times as long
    as its snapshots took, whichever is later (province-scale states take long to save)."""
    now = [100.0]
    worker.timer = lambda: now[0]
    took = [0.5]  # seconds the next snapshots take
    states = worker.states

    def slow_states(regions: set[bytes]) -> Any:
        now[0] += took[0]
        return states(regions)

    monkeypatch.setattr(worker, "states", slow_states)

    async def scenario() -> None:
        checkpoints = Checkpoints(worker, table, EVERY)
        checkpoints.stream = Stream()
        for took_s, due_after in ((0.5, SPREAD * 0.5), (0.01, EVERY)):
            took[0] = took_s
            began = now[0]
            checkpoints.took([message(1, 0)], touch(worker, 1))
            running = asyncio.create_task(checkpoints.checkpoint())
            await asyncio.sleep(0)
            for future in table.changelog_topic.futures:
                if not future.done():
                    future.set_result(None)
            await running
            now[0] = began + due_after - 0.001
            assert not checkpoints.is_due(now[0])
            now[0] = began + due_after
            assert checkpoints.is_due(now[0])

    asyncio.run(scenario())


@pytest.mark.parametrize("input_meanwhile", [False, True])
def test_the_idle_release_does_not_release_what_came_while_the_broker_was_asked(
    worker: Worker, input_meanwhile: bool
) -> None:
    """The idle release asks the broker whether every located message was taken; the incidents
    stage may take new input during that call. A clean-clone CI run (2026-12-04) released a
    region to the newest event time of its first records that way, and three devices' next
    records were late (their `device_new` came one reading late). So idleness is asked again
    after the call."""
    now = [200.0]
    worker.timer = lambda: now[0]
    worker.last_input, worker.read_out_at = 100.0, 199.0
    released: list[Any] = []

    async def read_out() -> bool:
        if input_meanwhile:  # what take_located does when it takes records
            now[0] += 0.05
            worker.last_input = worker.timer()
        return True

    async def publish(events: list[Any]) -> list[Any]:
        released.append(events)
        return []

    async def checkpoint() -> None:
        released.append("checkpoint")

    fake = SimpleNamespace(
        app=SimpleNamespace(rebalancing=False),
        worker=worker,
        idle_release=5.0,
        located_read_out=read_out,
        checkpoints=SimpleNamespace(
            table=SimpleNamespace(data={}),
            took=lambda taken, regions, sent: released.append(regions),
        ),
        publish=publish,
        checkpoint=checkpoint,
    )
    asyncio.run(WorkerApp.release_if_idle(fake))  # type: ignore[arg-type]
    assert released == ([] if input_meanwhile else [[], set(), "checkpoint"])


def test_a_producer_that_stopped_fails_the_checkpoint_instead_of_waiting_forever(
    worker: Worker, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faust's producer buffer stops for good on a send it cannot make (a message over its size
    limit): the sends behind it never complete. The checkpoint sees it stopped and acks nothing."""
    monkeypatch.setattr("firewatch.stream.checkpoint.WATCH_EVERY", 0.01)
    stopped: list[BaseException] = []

    async def scenario() -> None:
        checkpoints = Checkpoints(
            worker, table, EVERY, producer_failed=lambda: stopped[0] if stopped else None
        )
        checkpoints.stream = stream = Stream()
        checkpoints.took([message(1, 7)], touch(worker, 1))
        running = asyncio.create_task(checkpoints.checkpoint())
        await asyncio.sleep(0.1)
        assert not running.done()  # a producer that runs may take its time
        stopped.append(ValueError("The message is 1497791 bytes when serialized"))
        with pytest.raises(NotDelivered, match=r"producer stopped .*1497791 bytes.* 1 located"):
            await asyncio.wait_for(running, timeout=5)
        assert stream.acked == [] and checkpoints.saved(b"test") is None

    asyncio.run(scenario())


def test_the_worker_app_reads_whether_faust_s_producer_buffer_stopped(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Checkpoints watches: the app's producer buffer (nothing is started here)."""
    app = WorkerApp(worker.settings, worker, idle_release=5.0, stall_after=60.0)
    assert app.producer_failed() is None
    buffer = app.app.producer.buffer
    reason = ValueError("too large")
    monkeypatch.setattr(type(buffer), "crashed", property(lambda self: True))
    buffer.crash_reason = reason
    assert app.producer_failed() is reason


def test_a_due_checkpoint_runs_beside_the_stage_one_at_a_time() -> None:
    """The stage starts a due checkpoint and goes on taking (checkpoint_soon); another one due
    meanwhile is not started beside it (the next take starts it once the first is done)."""
    started: list[int] = []

    async def scenario() -> None:
        gate = asyncio.Event()

        async def checkpoint() -> None:
            started.append(len(started))
            await gate.wait()

        fake = SimpleNamespace(_checkpointing=None, checkpoint=checkpoint)
        WorkerApp.checkpoint_soon(fake)  # type: ignore[arg-type]
        WorkerApp.checkpoint_soon(fake)  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        assert started == [0] and not fake._checkpointing.done()  # the stage did not wait
        gate.set()
        await fake._checkpointing
        WorkerApp.checkpoint_soon(fake)  # type: ignore[arg-type]
        await fake._checkpointing
        assert started == [0, 1]

    asyncio.run(scenario())


def test_a_checkpoint_that_fails_in_its_task_stops_the_worker() -> None:
    """In a task of its own nobody awaits its error: the worker stops, as when the broker does not
    take a snapshot (its successor resumes from the last checkpoint)."""
    crashed: list[BaseException] = []
    failure = ValueError("snapshot of region test failed")

    async def failing() -> None:
        raise failure

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    fake = SimpleNamespace(
        checkpoints=SimpleNamespace(checkpoint=failing),
        topics=SimpleNamespace(located="located"),
        app=SimpleNamespace(crash=crash),
    )
    asyncio.run(WorkerApp.checkpoint(fake))  # type: ignore[arg-type]
    assert crashed == [failure]
