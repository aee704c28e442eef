"""The closed loop on Kafka: false-alarm masks from the linkage queue to every worker's engines.

    `dispatch close --outcome false_alarm --cause known_heat_source` -> Redis fw:masks (atomic
    with the close) -> the dispatcher's MaskPublisher -> firewatch.masks (compacted: key the mask
    name, value its JSON; a tombstone when it is removed) -> every worker's follow_masks, from
    the topic's start -> ClosedLoopMasks -> each region's Engine

The topic is small and compacted, so a worker that starts, restarts or takes over partitions
reads the whole current set before its incidents stage processes anything (`ready`). Several
dispatchers may publish the same masks: a mask is the same value whoever sends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from firewatch.engine.core import Engine
from firewatch.linkage.store import DispatchStore
from firewatch.rules.model import Mask
from firewatch.stream.topics import all_partitions

log = logging.getLogger(__name__)
T = TypeVar("T")


class ClosedLoopMasks:
    """The current closed-loop masks, as the masks topic says, applied to engines."""

    def __init__(self) -> None:
        self.current: dict[str, Mask] = {}
        self.ready = asyncio.Event()  # the topic was read to its end once

    def update(self, changes: Mapping[str, Mask | None]) -> None:
        apply_changes(self.current, changes)

    def apply(self, engine: Engine) -> None:
        """Make the engine's masks its rule masks plus the current closed-loop ones. Until the
        topic has been read once, an engine keeps the masks its saved state has."""
        if not self.ready.is_set():
            for mask in self.current.values():
                engine.add_mask(mask)
            return
        rules = {m.name for m in engine.rules.masks}
        have = {m.name: m for m in engine.masks}
        for name in have.keys() - rules - self.current.keys():
            engine.remove_mask(name)
        for name, mask in self.current.items():
            if have.get(name) != mask:
                engine.add_mask(mask)


def apply_changes(current: dict[str, T], changes: Mapping[str, T | None]) -> None:
    """Records of a compacted topic, applied to what it holds: a value sets, None (a tombstone)
    removes."""
    for name, value in changes.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value


def decode(key: bytes | None, value: bytes | None, where: str) -> tuple[str, Mask | None] | None:
    """A masks-topic record as (name, mask or None for a tombstone); None, said, if garbled."""
    if not key:
        log.warning("%s: mask record without a key skipped", where)
        return None
    name = key.decode(errors="replace")
    if value is None:
        return name, None
    try:
        mask = Mask.model_validate_json(value)
    except ValueError as exc:
        log.warning("%s: mask %r not understood, skipped: %s", where, name, exc)
        return None
    if mask.name != name:
        log.warning("%s: mask record keyed %r names %r, skipped", where, name, mask.name)
        return None
    return name, mask


async def follow_masks(
    consumer: Any, topic: str, apply: Callable[[Mapping[str, Mask | None]], None], ready: Any
) -> None:
    """Read the masks topic from its start for ever (an unstarted aiokafka consumer of that
    topic with no group: it is assigned every partition); `ready` is set once the end as of the
    start has been read."""
    await consumer.start()
    try:
        assigned = await all_partitions(consumer, topic)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(assigned) if assigned else {}
        remaining = {tp for tp, end in ends.items() if end > 0}
        if not remaining:
            ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            changes: dict[str, Mask | None] = {}
            for tp, records in batches.items():
                for r in records:
                    got = decode(r.key, r.value, f"{topic}[{tp.partition}]@{r.offset}")
                    if got is not None:
                        changes[got[0]] = got[1]
                if tp in remaining and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if changes:
                apply(changes)
                log.info("%s: closed-loop masks changed: %s", topic, ", ".join(sorted(changes)))
            if not remaining and not ready.is_set():
                ready.set()
    finally:
        await consumer.stop()


class MaskPublisher:
    """The dispatcher's side: Redis's masks (the linkage queue's, changed atomically with the
    closes that make them) to the compacted masks topic, whenever their version changes."""

    def __init__(self, store: DispatchStore) -> None:
        self.store = store
        self.version = -1
        self.published: dict[str, bytes] = {}  # what the topic holds, by mask name
        self._pending = -1  # the version `changes` read

    def learn(self, records: Mapping[str, bytes | None]) -> None:
        """What the topic already holds (read from its start): only differences are sent."""
        apply_changes(self.published, records)

    def changes(self) -> dict[str, bytes | None]:
        """Records to send (None: a tombstone) to make the topic equal Redis's masks; empty when
        the version has not moved. Call `sent` once the broker has them."""
        version = self.store.masks_version()
        if version == self.version:
            return {}
        wanted = {m.name: m.model_dump_json(exclude_none=True).encode() for m in self.store.masks()}
        out: dict[str, bytes | None] = {
            n: v for n, v in wanted.items() if self.published.get(n) != v
        }
        out.update((n, None) for n in self.published.keys() - wanted.keys())
        self._pending = version
        return out

    def sent(self, records: Mapping[str, bytes | None]) -> None:
        self.learn(records)
        self.version = self._pending
