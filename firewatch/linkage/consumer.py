"""Feeding the linkage queue: batches of incident events, retried while Redis is unreachable.

One implementation for every source of incident events: the in-process engine, a replay's output
file, and the Kafka incidents topic. While Redis is down the consumer takes no more input and
retries the same batch (redis-py's Retry, with a jittered exponential backoff so that several
dispatchers do not all come back at once); every write is idempotent, so nothing is lost or
doubled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import redis
from redis.backoff import AbstractBackoff, EqualJitterBackoff
from redis.retry import Retry

from firewatch.engine.core import Engine
from firewatch.linkage.service import Linkage
from firewatch.linkage.store import DispatchCounts, DispatchStore
from firewatch.model import Event, parse_event

log = logging.getLogger(__name__)
T = TypeVar("T")
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
# seconds between retries: between half and all of 0.5, 1, 2, ... up to 30
BACKOFF = EqualJitterBackoff(cap=30.0, base=0.25)


class Observer(Protocol):
    """What a consumer tells as it goes (firewatch.metrics.LinkageMetrics counts it): a Redis
    call that failed, one that is retried, and escalation steps made."""

    def error(self, operation: str) -> None: ...

    def retry(self, operation: str) -> None: ...

    def escalated(self, done: Sequence[tuple[str, str]]) -> None: ...


class LinkageConsumer:
    def __init__(
        self,
        linkage: Linkage,
        backoff: AbstractBackoff = BACKOFF,
        max_attempts: int | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.linkage = linkage
        self.max_attempts = max_attempts  # None: retry for ever
        self._retry = Retry(backoff, -1 if max_attempts is None else max_attempts - 1, UNREACHABLE)
        self.observer = observer
        self.totals = DispatchCounts()
        self.retries = 0

    def deliver(self, events: Sequence[Event]) -> DispatchCounts:
        counts = self._retrying(
            lambda: self.linkage.consume(events), f"{len(events)} events", "deliver"
        )
        for name, value in vars(counts).items():
            setattr(self.totals, name, getattr(self.totals, name) + value)
        return counts

    def escalate(self) -> list[tuple[str, str]]:
        done = self._retrying(self.linkage.escalate, "escalation", "escalate")
        if done and self.observer is not None:
            self.observer.escalated(done)
        return done

    def run(self, batches: Iterable[Sequence[Event]]) -> DispatchCounts:
        for batch in batches:
            self.deliver(batch)
            self.escalate()
        return self.totals

    def _retrying(self, call: Callable[[], T], what: str, operation: str) -> T:
        def failed(exc: Exception, attempt: int) -> None:
            self.retries += 1
            if self.observer is not None:
                self.observer.error(operation)
            if self.max_attempts is not None and attempt >= self.max_attempts:
                return  # Retry raises it
            if self.observer is not None:
                self.observer.retry(operation)
            log.warning(
                "linkage: Redis unreachable applying %s (%s); input paused, retry %d",
                what,
                exc,
                attempt,
            )

        return self._retry.call_with_retry(call, failed, with_failure_count=True)


def read_events(path: Path, batch_size: int = 1000) -> Iterator[list[Event]]:
    """Batches of incident events from a `firewatch replay --out` file."""
    batch: list[Event] = []
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                batch.append(parse_event(line))
            except ValueError as exc:
                log.warning(
                    "%s:%d: not an incident or device event, skipped: %s", path, number, exc
                )
                continue
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


class MaskSync:
    """The closed loop: suppression masks made by false-alarm closures, applied to an engine."""

    def __init__(self, store: DispatchStore, engine: Engine) -> None:
        self.store = store
        self.engine = engine
        self.version = -1
        self.names: set[str] = set()

    def sync(self) -> bool:
        """Reload the masks when they changed; True when the engine's masks changed."""
        version = self.store.masks_version()
        if version == self.version:
            return False
        masks = self.store.masks()
        for name in self.names - {m.name for m in masks}:
            self.engine.remove_mask(name)
        for mask in masks:
            self.engine.add_mask(mask)
        self.names = {m.name for m in masks}
        self.version = version
        return True
