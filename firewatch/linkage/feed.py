"""The change feed: one Redis Stream (keys.FEED) with an entry for every change of an incident or
an order, in the order they happened. The dashboard's event stream reads it.

Each entry is appended by the Lua script that makes the change (scripts.py: CREATE, TRANSITION,
ESCALATE, INCIDENT), in the same atomic call, so nothing changes without appearing here; a call
that changes nothing (a redelivered event, a repeated ack) appends nothing. The entry id is the
stream's, so a reader resumes exactly after the last id it saw (`since`), without gaps or
repeats, as long as the feed still holds what follows that id (else FeedGap).

Every entry has the same fields, FIELDS, empty when they do not apply (one field layout lets
Redis store the field names once per stream node instead of once per entry):

    kind         `incident` | `order` | `maintenance` (device health, maintenance.py)
    event        incident: `opened` | `updated` | `closed` (the incident event);
                 order: `created` | `ack` | `arrive` | `close` | `mask` | `escalated` |
                 `severity` | `reached` | `incident_closed` (the order log entry's kind);
                 maintenance: `device_down` | `cell_blind` (opened) | `device_up` |
                 `cell_watched` (resolved), with the maintenance order in `order`, its
                 `open` or `resolved` in `state`
    incident     the incident id
    order        the order id ('' for an incident without an order)
    event_id     incident: the incident event's deterministic id; order: ''
    severity     after the change
    state        incident: `open` | `closed`; order: its state after the change
                 (`pending`, `acknowledged`, `on_scene`, `closed`)
    team, village, township, district, grid_id, lat, lon: where (of the incident's grid cell)
    responder    who must answer the order now (`team:<t>`, or the level it was escalated to)
    by           who did it: the actor given to ack / arrive / close (e.g. `team:<t>`, `cli`,
                 `admin:<name>`); '' for what firewatch did itself (incident events, creation,
                 escalation, severity rises) or when the caller named nobody
    at           when the change was made (epoch seconds, 3 decimals, the scripts' clock input)
    observed_at  incident: the event's event time (epoch seconds); order: ''
    detail       the order log entry's text; incident: detections and the rule that opened it

Trimmed approximately at FEED_MAXLEN entries (XADD MAXLEN ~): Redis never trims below it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import redis
import redis.asyncio as aredis

from firewatch.linkage import keys
from firewatch.linkage.model import FeedGap, QueryError

FIELDS: tuple[str, ...] = (
    "kind", "event", "incident", "order", "event_id", "severity", "state",
    "team", "village", "township", "district", "grid_id", "lat", "lon",
    "responder", "by", "at", "observed_at", "detail",
)  # fmt: skip
# About 300 bytes an entry in Redis (measured: 294 on Redis 6.2, mostly the values), so some
# 300 MB at the cap; a warning makes about six entries (opened, created, ack, arrive, close,
# closed), so the cap holds some 160,000 warnings. DispatchStore(feed_maxlen=...) sets another.
FEED_MAXLEN = 1_000_000
MAX_COUNT = 10_000  # entries one read returns at most
START = "0-0"  # before every entry: `since(START)` reads the feed from its start
MILLISECOND = timedelta(milliseconds=1)
_ID = re.compile(r"(\d{1,20})-(\d{1,20})")

Entry = tuple[str, dict[str, str]]


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id `<ms>-<seq>` as a pair; QueryError naming it when it is not one."""
    m = _ID.fullmatch(entry_id)
    if m is None:
        raise QueryError(f"{entry_id!r} is not a change feed entry id (<ms>-<seq>, e.g. 0-0)")
    ms, seq = int(m[1]), int(m[2])
    if ms >= 1 << 64 or seq >= 1 << 64:
        raise QueryError(f"{entry_id!r} is not a change feed entry id: out of range")
    return ms, seq


def since(
    client: redis.Redis,
    last_id: str | None,
    count: int = 100,
    block: timedelta | None = None,
    maxlen: int = FEED_MAXLEN,
) -> list[Entry]:
    """Up to `count` entries after `last_id` (exclusive; None: from the start), oldest first.
    With `block`, waits up to that long for a first entry when there is none yet (XREAD BLOCK;
    it holds a connection of the client's pool meanwhile). Raises FeedGap when entries after
    `last_id` may have been trimmed, or when `last_id` is beyond the feed's last entry (a feed
    emptied or restored from an older copy): the reader missed changes and must reload. The
    check and the read are one transaction, so no trim can fall between them."""
    after = _after(last_id, count)
    r: Any = client  # redis-py's return types are unions of its sync and async clients
    got = _checked(after, _queue(r.pipeline(transaction=True), after, count).execute(), maxlen)
    if not got and block is not None:  # nothing after `after` yet: what comes is all new
        got = r.xread({keys.FEED: after}, count=count, block=_ms(block))
    return _entries(got)


async def asince(
    client: aredis.Redis,
    last_id: str | None,
    count: int = 100,
    block: timedelta | None = None,
    maxlen: int = FEED_MAXLEN,
) -> list[Entry]:
    """`since` on an asyncio client (the API's change-feed hub: no thread per read)."""
    after = _after(last_id, count)
    r: Any = client
    replies = await _queue(r.pipeline(transaction=True), after, count).execute()
    got = _checked(after, replies, maxlen)
    if not got and block is not None:
        got = await r.xread({keys.FEED: after}, count=count, block=_ms(block))
    return _entries(got)


async def afollow(
    client: aredis.Redis, last_id: str | None, count: int = 100, block: timedelta | None = None
) -> list[Entry]:
    """Entries after `last_id` as XREAD gives them, waiting up to `block` for a first one,
    without `asince`'s gap check: one round trip, for a reader that follows the feed from where
    it is and runs the check itself now and then (the API's hub, at every ack under load)."""
    after = _after(last_id, count)
    r: Any = client
    return _entries(
        await r.xread({keys.FEED: after}, count=count, block=_ms(block) if block else None)
    )


def last_id(client: redis.Redis) -> str:
    """The id of the feed's newest entry (START when it is empty): a reader that wants only
    what happens from now on starts there."""
    r: Any = client
    return _newest(r.xrevrange(keys.FEED, count=1))


async def alast_id(client: aredis.Redis) -> str:
    r: Any = client
    return _newest(await r.xrevrange(keys.FEED, count=1))


def _after(last_id: str | None, count: int) -> str:
    if not 1 <= count <= MAX_COUNT:
        raise QueryError(f"change feed: count must be 1..{MAX_COUNT}, not {count}")
    after = START if last_id is None else last_id
    parse_id(after)
    return after


def _queue(pipe: Any, after: str, count: int) -> Any:
    """The read and what its gap check needs, queued on one transaction."""
    pipe.xrange(keys.FEED, count=1)
    pipe.xrevrange(keys.FEED, count=1)
    pipe.xlen(keys.FEED)
    pipe.xread({keys.FEED: after}, count=count)
    return pipe


def _checked(after: str, replies: list[Any], maxlen: int) -> Any:
    oldest, newest, length, got = replies
    position = parse_id(after)
    if position != (0, 0):
        _check_gap(position, after, oldest, newest, length, maxlen)
    return got


def _ms(block: timedelta) -> int:
    return max(1, int(block / MILLISECOND))


def _entries(got: Any) -> list[Entry]:
    return [(i.decode(), _fields(f)) for _, entries in got or [] for i, f in entries]


def _newest(newest: Any) -> str:
    return str(newest[0][0].decode()) if newest else START


def _check_gap(
    after: tuple[int, int], text: str, oldest: Any, newest: Any, length: int, maxlen: int
) -> None:
    """FeedGap when what follows `after` may be gone.

    Approximate trimming never leaves fewer than `maxlen` entries, so a feed shorter than that
    has never been trimmed; a longer one whose oldest entry is after `after` may have lost
    entries between them (it may also not have: the reader reloads once too often)."""
    newest_text = newest[0][0].decode() if newest else "none (it is empty)"
    if after > (parse_id(newest[0][0].decode()) if newest else (0, 0)):
        raise FeedGap(
            f"change feed {keys.FEED} has no entry {text}: its newest is {newest_text}; "
            f"reload and start again"
        )
    if length >= maxlen and oldest and parse_id(oldest[0][0].decode()) > after:
        raise FeedGap(
            f"change feed {keys.FEED} was trimmed after {text} (its oldest entry is "
            f"{oldest[0][0].decode()}, {length:,} kept): entries may be missing; reload"
        )


def _fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}
