"""`firewatch produce`: publish JSONL or FIRMS CSV files to the detections topic.

JSONL lines go to Kafka as they are, bad ones included: validation is the worker's job, and a bad
line must reach the rejects topic with its partition and offset. The key is the record's
device_id when the line parses, so one device's readings stay in order on one partition. FIRMS rows
are converted to detection JSON first; a row that cannot be converted is reported and skipped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from firewatch.ingest.firms import is_firms_header, read_firms
from firewatch.ingest.validate import describe_reject, iter_lines
from firewatch.model import AnyDetection, Reject
from firewatch.progressbar import Bar
from firewatch.stream.topics import KafkaError, text_field

Record = tuple[bytes | None, bytes]  # key, value


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
    with path.open("rb") as f:
        head = f.readline().decode("utf-8", errors="replace")
    if is_firms_header(head):
        for detections, rejects in read_firms(path):
            skipped.extend(rejects)
            for d in detections:
                yield d["device_id"].encode(), detection_json(d)
        return
    with path.open("rb") as f:
        for line in iter_lines(f, max_line_bytes):
            if line.data.strip():
                yield text_field(line.data, "device_id"), line.data


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
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    try:
        await producer.start()
    except KafkaConnectionError as exc:
        raise KafkaError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    start = clock()
    with Bar(progress, f"produce to {topic}") as bar:
        try:
            pending: list[asyncio.Future[object]] = []
            for path in paths:
                for key, value in records(path, summary.skipped):
                    pending.append(await producer.send(topic, value, key=key))
                    summary.sent += 1
                    if rate is not None:
                        ahead = summary.sent / rate - (clock() - start)
                        if ahead > 0.01:
                            await asyncio.sleep(ahead)
                    if len(pending) >= 10_000:
                        await asyncio.gather(*pending)
                        pending.clear()
                        bar.update(summary.sent)
            await asyncio.gather(*pending)
            await producer.flush()
            bar.update(summary.sent)
        finally:
            await producer.stop()
    summary.seconds = clock() - start
    return summary


def produce_main(paths: list[Path], bootstrap: str, topic: str, rate: str | None) -> str:
    return asyncio.run(produce(paths, bootstrap, topic, parse_rate(rate), sys.stderr)).render(topic)
