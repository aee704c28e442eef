"""The incidents stage's checkpoints: each region's engine state goes to the changelog of a Faust
table, and the located messages that state covers are acked (so committed) only once the broker
has it.

`Checkpoints` keeps what changed since the last checkpoint (the regions, the located messages
taken, the incident events they produced) and makes one: snapshot the changed regions
(Worker.states), send each to the changelog in its own partition (put in the local store once the
broker has it), wait until the broker has every one of them and every incident event sent since
the last checkpoint, then ack the messages. A successor (after a kill, a stop or a rebalance)
resumes from the snapshots and the messages after them. Revoked partitions' messages are dropped,
not acked: their new owner reads them again.

Pace: at most every `every` seconds, and never more than a tenth of the stage's time: the next
checkpoint is due SPREAD times as long after the last one began as its snapshots took. At province
scale a region's state is megabytes (device health: tens of thousands of devices), and saved every
second the snapshots took most of a worker's time (benchmarks/README.md, Scale); a longer pace
only means more located messages read again after a kill.

Why wait: Faust commits acked offsets on its own timer, and a message sent with `send_soon` sits
in a buffer until its producer gets to it. Acked before the broker had the snapshot and the
events, a worker killed in between would leave its successor offsets past a snapshot it never
gets, and events never sent: records lost, not read again. A send that fails (the broker refused
it or the producer gave up) raises `NotDelivered`: nothing is acked, and the worker stops
(worker.py) so that its successor resumes from what the broker has. While it waits, it watches
the producer (`producer_failed`): a send refused before it reaches the broker (a message over the
producer's size limit, 2026-12-05) stops Faust's producer buffer for good, and every send after
it would wait forever; the checkpoint raises `NotDelivered` then too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, NamedTuple

from faust.types.tuples import Message

from firewatch.stream.stages import Worker

SPREAD = 10.0  # the next checkpoint is due this many times its snapshots' time after it began
WATCH_EVERY = 1.0  # seconds between looks at the producer while a checkpoint waits for it


class NotDelivered(Exception):
    """A snapshot or an incident event the broker did not take: the checkpoint acks nothing."""


class Checkpoints:
    def __init__(
        self,
        worker: Worker,
        table: Any,
        every: float,
        producer_failed: Callable[[], BaseException | None] = lambda: None,
    ) -> None:
        self.worker = worker
        self.table = table  # a Faust table of bytes: region -> packed engine state
        self.every = every  # seconds between checkpoints, at most
        # why the producer that delivers the snapshots and events stopped; None while it runs
        self.producer_failed = producer_failed
        self.regions: set[bytes] = set()  # changed since their last snapshot
        self.events: list[Any] = []  # located messages taken, not yet acked
        self.sent: list[Awaitable[Any]] = []  # their incident events' deliveries, not yet awaited
        self.stream: Any = None  # the agent's stream, which acks them
        self.due = 0.0  # the worker's timer reading at which the next checkpoint is due
        # one checkpoint at a time: the agent's and the timer's would otherwise ack out of order
        # while the first waits for the broker (and Faust commits past a gap of one message)
        self._one = asyncio.Lock()

    def took(
        self, events: Iterable[Any], touched: set[bytes], sent: Iterable[Awaitable[Any]] = ()
    ) -> None:
        """A batch of located messages taken, the regions it changed and the deliveries of the
        incident events it produced."""
        self.events += events
        self.regions |= touched
        self.sent += sent

    def is_due(self, now: float) -> bool:
        return now >= self.due

    @property
    def dirty(self) -> bool:
        return bool(self.events or self.regions)

    async def checkpoint(self) -> None:
        """Snapshot the changed regions and, once the broker has the snapshots and the incident
        events sent since the last checkpoint, ack the located messages they cover."""
        async with self._one:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        # taken first: what the agent adds while this awaits belongs to the next checkpoint
        regions, self.regions = self.regions, set()
        events, self.events = self.events, []
        sent, self.sent = self.sent, []
        began = self.worker.timer()
        sent += self.save(regions)
        self.due = began + max(self.every, SPREAD * (self.worker.timer() - began))
        results = await self._delivered(sent, len(events))
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise NotDelivered(
                f"{len(failed)} of {len(sent)} snapshots and incident events not delivered "
                f"({failed[0]!r}); {len(events)} located messages left unacked"
            )
        for event in events:
            await self.stream.ack(event)

    async def _delivered(self, sent: list[Awaitable[Any]], unacked: int) -> list[Any]:
        """Each delivery's result or error, once all are done; NotDelivered when the producer
        stops before they are (they would never be)."""
        gathered = asyncio.gather(*sent, return_exceptions=True)
        while not gathered.done():
            await asyncio.wait([gathered], timeout=WATCH_EVERY)
            stopped = self.producer_failed()
            if stopped is not None and not gathered.done():
                raise NotDelivered(
                    f"the producer stopped ({stopped!r}) with {len(sent)} snapshots and incident "
                    f"events to deliver; {unacked} located messages left unacked"
                )
        return gathered.result()

    def save(self, regions: set[bytes]) -> list[Awaitable[Any]]:
        """Send these regions' states to the changelog (the local store follows on delivery):
        their deliveries."""
        return [
            self.table.changelog_topic.send_soon(
                key=region,
                value=blob,
                partition=partition,
                callback=partial(_stored, self.table.data, region, blob),
            )
            for region, (partition, blob) in self.worker.states(regions).items()
        ]

    def saved(self, region: bytes) -> bytes | None:
        """A region's last saved state, if this worker has it."""
        # by iteration over the assigned partitions: a RocksDB store's get() looks in the
        # partition of the stream's current event, which in a batch may be another one
        return dict(self.table.data.items()).get(region)

    def drop(self, partitions: set[int]) -> None:
        """Revoked partitions: their messages are read again by the new owner."""
        self.events = [e for e in self.events if e.message.partition not in partitions]


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
