"""POST /v1/detections behind the router: validate with firewatch.ingest, then hand the accepted
records to a sink: the in-process engine (its incident events applied by the LinkageConsumer) or
the Kafka detections topic (kafka.py). Both validate as the workers do, with the API's clock as
the arrival time, so `future_timestamp` applies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

import orjson
from starlette.concurrency import run_in_threadpool

from firewatch.engine.core import Engine
from firewatch.ingest.validate import validate_lines
from firewatch.linkage.consumer import LinkageConsumer, MaskSync
from firewatch.metrics.engine import VALIDATE, EngineMeter, EngineMetrics
from firewatch.model import AnyDetection, Event, Reject

ORIGIN = "http"
JSON = "application/json"
JSONL = ("application/x-ndjson", "application/jsonl")


class BodyError(ValueError):
    """A body that is not a JSON array (application/json) or JSON lines (the message says why)."""


class MediaTypeError(ValueError):
    """A body of a Content-Type the route does not read (the message names the ones it does)."""


class Sink(Protocol):
    destination: Literal["engine", "kafka"]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, lines: Sequence[bytes], detections: Sequence[AnyDetection]) -> None:
        """Take validated records: their JSON text and what validation made of it."""
        ...


@dataclass(frozen=True)
class IntakeResult:
    accepted: int
    rejects: list[Reject]  # Reject.line: the record's 0-based index in the body


class Intake:
    def __init__(
        self,
        sink: Sink,
        max_future: timedelta,
        max_line_bytes: int = 65536,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.sink = sink
        self.max_future = max_future
        self.max_line_bytes = max_line_bytes
        self.metrics = metrics  # rejects by reason, validation time

    async def start(self) -> None:
        await self.sink.start()

    async def stop(self) -> None:
        await self.sink.stop()

    async def take(self, records: Sequence[bytes], now: datetime) -> IntakeResult:
        """Validate `records` (one JSON object each) as arrived at `now`; send the valid ones."""
        began = time.perf_counter()
        detections, keys, rejects = await run_in_threadpool(
            validate_lines,
            records,
            ORIGIN,
            0,
            max_line_bytes=self.max_line_bytes,
            not_after=now + self.max_future,
        )
        if self.metrics is not None:
            self.metrics.batch.labels(VALIDATE).observe(time.perf_counter() - began)
            self.metrics.count_rejects(rejects)
        if detections:
            await self.sink.send([records[k] for k in keys], detections)
        return IntakeResult(len(detections), rejects)


def split_body(content_type: str | None, body: bytes) -> list[bytes]:
    """One JSON text per record: the elements of a JSON array, or the lines of JSON lines.
    Raises MediaTypeError for another Content-Type, BodyError for a JSON body that is no array."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in JSONL:
        return [line.removesuffix(b"\r") for line in body.split(b"\n")]
    if media != JSON:
        raise MediaTypeError(
            f"Content-Type {content_type or '(none)'}: send {JSON} (an array of detection "
            f"objects) or {JSONL[0]} (one detection object per line)"
        )
    try:
        records = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"body is not JSON ({exc}): send an array of detection objects") from None
    if not isinstance(records, list):
        raise BodyError(f"body is a JSON {type(records).__name__}, not an array of detections")
    return [orjson.dumps(r) for r in records]


class EngineSink:
    """One engine in this process (so one API process): its incident events go to the linkage
    queue through the LinkageConsumer, and false-alarm masks come back from Redis (MaskSync).

    Events that Redis did not take (it stopped answering) are kept and delivered first with the
    next batch; the error reaches the client (503), whose retry is a duplicate the engine drops.
    `meter`: the engine's metrics, after each batch."""

    destination: Literal["engine", "kafka"] = "engine"

    def __init__(
        self, engine: Engine, consumer: LinkageConsumer, meter: EngineMeter | None = None
    ) -> None:
        self.engine = engine
        self.consumer = consumer
        self.meter = meter
        if meter is not None:
            meter.watch(engine)
        self.masks = MaskSync(consumer.linkage.store, engine)
        self._lock = threading.Lock()  # one engine, requests on several threads
        self._undelivered: list[Event] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, lines: Sequence[bytes], detections: Sequence[AnyDetection]) -> None:
        await run_in_threadpool(self._process, list(detections))

    def _process(self, detections: list[AnyDetection]) -> None:
        with self._lock:
            self.masks.sync()
            events = self.engine.process(detections)
            if self.meter is not None:
                self.meter.update(self.engine, events)
            self._undelivered += events
            if self._undelivered:
                self.consumer.deliver(self._undelivered)
                self._undelivered = []
