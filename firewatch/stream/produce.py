"""`firewatch produce`: publish JSONL or FIRMS CSV files to the detections topic.

JSONL lines go to Kafka as they are, bad ones included: validation is the worker's job, and a bad
line must reach the rejects topic with its partition, offset and line. The lines bound for one
partition go packed, several in a message (stream/pack.py: Kafka's cost is per message); the
partition is the one Kafka gives the record's device_id as a key, when the line parses, so one
device's readings stay in order on one partition. FIRMS rows are converted to detection JSON
first; a row that cannot be converted is reported and skipped.

Across partitions the topic keeps the file's event-time order to the minute (Fence): a record of a
later minute of event time than any the file reached since the last fence is sent only once the
broker has acknowledged every record before it, what is packed first. Kafka orders one partition
only; without the fence a file sent faster than real time (a replay, a backfill) lands one
partition seconds after another (the producer sends one batch per partition per request), hours of
event time apart, and the workers' progress claims (stream/progress.py) rightly treat what comes
that late as late. With it, no record lands after a record of a later minute than the latest the
file had reached before it: a record is no later on the topic than it is in the file. A live feed,
one minute of event time a minute, waits on about one fence a minute, and so does a file whose
records of neighbouring minutes interleave (each sensor's clock its own): fencing each return to
a later minute, as before 2026-12-05, made some 30 fences a minute of the simulated district, and
messages of 3.4 lines on average (79 s to send 1.7 million lines).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from firewatch.ingest.firms import is_firms_header, read_firms
from firewatch.ingest.validate import describe_reject, iter_lines
from firewatch.model import AnyDetection, Reject
from firewatch.progressbar import Bar
from firewatch.stream.pack import MESSAGE_BYTES, Packer
from firewatch.stream.topics import KafkaError, json_object

Record = tuple[bytes | None, bytes, float | None]  # key, value, event time (epoch s)
FENCE = 60.0  # seconds of event time: a record of a later minute waits for the ones before
# minutes: a record this far before the fenced minute starts the fences again from its own
REANCHOR = 60


@dataclass
class ProduceSummary:
    sent: int = 0
    skipped: list[Reject] = field(default_factory=list)  # FIRMS rows that could not be converted
    seconds: float = 0.0

    def render(self, topic: str) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        lines = [f"sent {self.sent:,} records to {topic} in {self.seconds:.1f} s ({rate:,.0f}/s)"]
        lines += [f"skipped {describe_reject(r)}" for r in self.skipped]
        return "\n".join(lines)


def parse_rate(text: str | None) -> float | None:
    """'5000/s' or '5000' -> 5000.0 records per second; None: as fast as the broker takes them."""
    if text is None:
        return None
    try:
        rate = float(text.removesuffix("/s"))
    except ValueError:
        raise KafkaError(f"--rate {text!r}: give records per second, like 5000/s") from None
    if rate <= 0:
        raise KafkaError(f"--rate {text!r} must be positive")
    return rate


def detection_json(d: AnyDetection) -> bytes:
    return orjson.dumps(d)  # datetimes as RFC 3339 with offset


def records(path: Path, skipped: list[Reject], max_line_bytes: int = 65536) -> Iterator[Record]:
    """(key, value, event time in epoch seconds or None) of each record of a JSONL or FIRMS file."""
    with path.open("rb") as f:
        head = f.readline().decode("utf-8", errors="replace")
    if is_firms_header(head):
        for detections, rejects in read_firms(path):
            skipped.extend(rejects)
            for d in detections:
                yield d["device_id"].encode(), detection_json(d), _seconds(d["observed_at"])
        return
    with path.open("rb") as f:
        for line in iter_lines(f, max_line_bytes):
            if line.data.strip():
                key, t = _key_and_time(line.data)
                yield key, line.data, t


def _key_and_time(value: bytes) -> tuple[bytes | None, float | None]:
    """A JSON line's device_id (its key) and observed_at (epoch s); None for what it lacks (a bad
    line goes as it is, unfenced: the worker rejects it)."""
    record = json_object(value) or {}
    key = record.get("device_id")
    return key.encode() if isinstance(key, str) else None, _seconds(record.get("observed_at"))


def _seconds(at: object) -> float | None:
    """An RFC 3339 time with its offset as epoch seconds; None when it is anything else."""
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        return None
    return when.timestamp() if when is not None and when.tzinfo is not None else None


async def produce(
    paths: list[Path],
    bootstrap: str,
    topic: str,
    rate: float | None = None,
    progress: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ProduceSummary:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    summary = ProduceSummary()
    # no linger: each fence waits for the batches before it, and what is sent while a request
    # is in flight batches itself (a 20 ms linger made a 4-hour file 4x slower to send)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=0,
        max_batch_size=2 * MESSAGE_BYTES,
        max_request_size=2 * MESSAGE_BYTES,
    )
    try:
        await producer.start()
        partitions = await producer.partitions_for(topic)
    except KafkaConnectionError as exc:
        raise KafkaError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    start = clock()
    with Bar(progress, f"produce to {topic}") as bar:
        try:
            out, fence = _Outbox(producer, topic, Packer(sorted(partitions))), Fence()
            for path in paths:
                for key, value, t in records(path, summary.skipped):
                    if t is not None and fence.crosses(t):
                        await out.acknowledged()  # the broker has all before it
                    await out.add(key, value)
                    summary.sent += 1
                    if rate is not None:
                        ahead = summary.sent / rate - (clock() - start)
                        if ahead > 0.01:
                            await out.send_packed()  # what waits with the sender goes now
                            await asyncio.sleep(ahead)
                    if out.unacknowledged >= 10_000:
                        await out.acknowledged()
                    if summary.sent % 10_000 == 0:
                        bar.update(summary.sent)
            await out.acknowledged()
            await producer.flush()
            bar.update(summary.sent)
        finally:
            await producer.stop()
    summary.seconds = clock() - start
    return summary


class Fence:
    """Which records wait until the broker has every record before them: each that takes the file
    into a later minute of event time than any since the last fence.

    A record more than REANCHOR minutes before the fenced minute (after one record from a clock
    far ahead, or a second file that starts earlier) starts the fences again from its own minute:
    one record from 2099 would otherwise end the fences for the rest of the file. Either way a
    record sent without a fence is of a minute no later than the fenced one, whose record came
    before it in the file; so one that overtakes an earlier record on the broker makes that record
    look no later than the file already had it."""

    def __init__(self) -> None:
        self.minute = -math.inf  # the minute of the last fence (or the one started again from)

    def crosses(self, t: float) -> bool:
        """Whether a record of event time `t` (epoch seconds), next in the file, is a fence."""
        minute = t // FENCE
        if minute > self.minute:
            self.minute = minute
            return True
        if minute < self.minute - REANCHOR:
            self.minute = minute
        return False


class _Outbox:
    """Lines to one topic, packed per partition (pack.py), and what the broker has yet to ack."""

    def __init__(self, producer: Any, topic: str, packer: Packer) -> None:
        self.producer = producer
        self.topic = topic
        self.packer = packer
        self.pending: list[asyncio.Future[object]] = []
        self.unacknowledged = 0  # lines sent or packed, not yet acknowledged

    async def add(self, key: bytes | None, line: bytes) -> None:
        self.unacknowledged += 1
        await self._send(self.packer.add(key, line))

    async def send_packed(self) -> None:
        await self._send(self.packer.drain())

    async def acknowledged(self) -> None:
        """Send what is packed, and wait until the broker has acknowledged every line."""
        await self.send_packed()
        await asyncio.gather(*self.pending)
        self.pending.clear()
        self.unacknowledged = 0

    async def _send(self, messages: list[tuple[int, bytes]]) -> None:
        for partition, value in messages:
            self.pending.append(await self.producer.send(self.topic, value, partition=partition))


def produce_main(paths: list[Path], bootstrap: str, topic: str, rate: str | None) -> str:
    return asyncio.run(produce(paths, bootstrap, topic, parse_rate(rate), sys.stderr)).render(topic)
