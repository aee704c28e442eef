"""Reading a target's notifications at least once, through its consumer group.

A read hands out entries and leaves them pending in the group; only `ack` (after the caller has
handed them over: printed them, shown them on a phone) removes them. Entries read but never
acknowledged come back:

- to the same consumer name at its next read, at once (its pending entries are read again,
  XREADGROUP ... 0): a reader that died and is started again under its name gets them back;
- to any other consumer once they have been pending for `min_idle` (XAUTOCLAIM): the entries of
  a reader that never comes back are not stranded.

So a notification may be handed out twice (a reader that died after handing it over but before
acknowledging it), never lost. Readers that run at the same time need distinct consumer names.
An entry trimmed from its stream (MAXLEN) while pending cannot be delivered any more; a read
acknowledges it and leaves it out.

Every read returns at most `count` entries: this consumer's pending ones first (including those
just claimed), then new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis

from firewatch.linkage import keys

MIN_IDLE = timedelta(seconds=60)  # another consumer's entries pending longer than this are claimed
_FIRST = "0-0"


@dataclass(frozen=True)
class Notification:
    id: str  # the entry id in fw:notify:<target>: acknowledge with it
    fields: dict[str, str]  # kind, order, severity, grid_id, at, text, ...


def read(
    client: redis.Redis,
    target: str,
    consumer: str,
    count: int = 100,
    min_idle: timedelta = MIN_IDLE,
) -> list[Notification]:
    """Up to `count` notifications for `consumer`: its pending ones, claimed ones, then new ones.

    Nothing is acknowledged here: call `ack` with the ids once they are handed over."""
    if count < 1:
        raise ValueError(f"reading the inbox of {target}: count must be at least 1, not {count}")
    r: Any = client  # redis-py's return types are unions of its sync and async clients
    stream = keys.notify(target)
    _ensure_group(r, stream)
    _claim_idle(r, stream, consumer, count, min_idle)
    out = _take(r, stream, consumer, "0", count)
    if len(out) < count:
        out += _take(r, stream, consumer, ">", count - len(out))
    return out


def ack(client: redis.Redis, target: str, ids: Sequence[str]) -> int:
    """Acknowledge handed-over notifications of `target`; returns how many were still pending."""
    if not ids:
        return 0
    r: Any = client
    return int(r.xack(keys.notify(target), keys.NOTIFY_GROUP, *ids))


def _ensure_group(r: Any, stream: str) -> None:
    try:
        r.xgroup_create(stream, keys.NOTIFY_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _claim_idle(r: Any, stream: str, consumer: str, count: int, min_idle: timedelta) -> None:
    """Move up to `count` entries pending longer than min_idle to `consumer` (any owner)."""
    idle_ms = max(0, int(min_idle.total_seconds() * 1000))
    start, claimed = _FIRST, 0
    while claimed < count:
        # (Redis 6.2 returns no id for a claimed entry trimmed from the stream: `_take` with
        # id 0 reads all of them, with their ids, from this consumer's pending list.)
        start, entries = r.xautoclaim(
            stream, keys.NOTIFY_GROUP, consumer, idle_ms, start, count=count - claimed
        )[:2]
        claimed += len(entries)
        if start in (_FIRST, _FIRST.encode()):
            return


def _take(r: Any, stream: str, consumer: str, since: str, count: int) -> list[Notification]:
    """XREADGROUP from `since` (">": new entries, "0": this consumer's pending ones)."""
    got = r.xreadgroup(keys.NOTIFY_GROUP, consumer, {stream: since}, count=count)
    out, gone = [], []
    for _, entries in got or []:
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: nothing left to hand over
                gone.append(entry_id)
                continue
            out.append(
                Notification(entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
            )
    if gone:
        r.xack(stream, keys.NOTIFY_GROUP, *gone)
    return out
