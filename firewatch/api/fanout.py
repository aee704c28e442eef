"""One reader of the change feed per API process, fanned out to every event-stream subscriber.

The change feed (linkage/feed.py) is a Redis Stream written in the same script as every change.
A Hub reads it with one task (a blocking XREAD on the asyncio client, so one Redis connection
whatever the number of subscribers), keeps the newest `window` entries in memory, each already
encoded as JSON once, and wakes its subscribers when entries arrive. A subscriber is a position
(the id of the last entry it was sent): it takes what follows from the hub's window, or, when its
position is older than the window (a client reconnecting with an old Last-Event-ID, or one that
fell behind), from Redis (`catch_up`) until it is inside the window again. So a reconnecting
client gets exactly the entries after its last id, in order, nothing twice, and a slow client
delays nobody: the hub never waits for a subscriber.

When the hub finds that the feed no longer holds its position (Redis emptied or restored from an
older copy), it starts again at the feed's newest entry and bumps its `generation`; subscribers
see the change and tell their client to reload (`Reset`). Given a `follow` read (feed.afollow:
XREAD alone, one round trip), the hub makes that check at most every `check_every` seconds
instead of at every read: under load it reads at every change (each ack), and the check's
transaction doubled what the feed cost the API. While nobody subscribes it keeps no window (a
subscriber that comes with an older position catches up from Redis, as one that fell behind).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import redis
from fastapi.sse import format_sse_event

from firewatch.linkage.feed import START, Entry, parse_id
from firewatch.linkage.model import FeedGap

log = logging.getLogger(__name__)

# feed.asince: entries after a position (at most a count, waiting up to a time for the first)
ReadFeed = Callable[[str | None, int, timedelta | None], Awaitable[list[Entry]]]
READ_COUNT = 1000  # entries one hub read takes at most
# how long one hub read waits for an entry (an entry ends the wait at once): short, since
# stopping the hub waits for the read in progress
BLOCK = timedelta(milliseconds=250)
# On Python 3.11 a cancel can be lost inside redis-py (its socket writes go through
# asyncio.wait_for, which returns the result when the write had just finished: CPython
# gh-86296, fixed in 3.12): stop() cancels again at this interval until the reader has ended,
# and the reader also ends at its next turn once the hub is closed.
STOP_RECANCEL = 0.1
RETRY_MAX = 10.0  # seconds between reads at most while Redis does not answer
CHECK_EVERY = 1.0  # seconds between the hub's checks that the feed still holds its position


@dataclass(frozen=True)
class Frame:
    """A feed entry ready to send: its id, the team of its incident's cell (a team's token sees
    its own team's changes only), and its server-sent event as bytes, encoded once for every
    subscriber: `id`, `event` (`incident` | `order`) and `data` (the entry's fields as JSON)."""

    id: str
    team: str
    wire: bytes

    @classmethod
    def of(cls, entry: Entry) -> Frame:
        entry_id, fields = entry
        data = orjson.dumps(fields).decode()
        event = fields.get("kind") or "change"
        return cls(entry_id, fields.get("team", ""), sse(data=data, event=event, id=entry_id))


def sse(
    *, data: str | None = None, event: str | None = None, id: str | None = None, **extra: Any
) -> bytes:
    """One server-sent event in wire format (fastapi.sse's encoder: one place that escapes)."""
    return format_sse_event(data_str=data, event=event, id=id, **extra)


class Reset(Exception):
    """The subscriber's position is gone from the feed: its client must reload and go on."""


class Full(Exception):
    """The hub already serves its maximum number of subscribers."""


class Hub:
    def __init__(
        self,
        read: ReadFeed,
        newest: Callable[[], Awaitable[str]],
        *,
        max_subscribers: int,
        window: int = 10_000,
        block: timedelta = BLOCK,
        follow: ReadFeed | None = None,
        check_every: float = CHECK_EVERY,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read  # also what subscribers catch up with
        self._newest = newest
        self._follow = follow  # reads without the gap check (None: every read checks)
        self.check_every = check_every
        self.timer = timer  # seconds, monotonic: when the next check is due, how long Redis is away
        self.max_subscribers = max_subscribers
        self.window = window
        self.block = block
        self.subscribers = 0
        self.generation = 0
        self.closed = False
        self._base = (0, 0)  # the window holds every entry after this id
        self._position = START  # the id of the newest entry read
        self._ids: list[tuple[int, int]] = []
        self._frames: list[Frame] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- the reader --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start at the feed's newest entry (or, with Redis away, its start: the first read then
        says whether that is right)."""
        try:
            self._restart(await self._newest())
        except redis.RedisError as exc:
            log.warning("change feed: Redis does not answer (%s); the stream waits for it", exc)
        self._task = asyncio.create_task(self._run(), name="change-feed-hub")

    async def stop(self) -> None:
        self.close()
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=STOP_RECANCEL)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("change feed: the reader failed", exc_info=task.exception())

    def close(self) -> None:
        """End every subscription (the server is shutting down: open streams would hold it)."""
        self.closed = True
        self._wake()

    @property
    def position(self) -> str:
        """The newest entry's id the hub has: where a subscriber "from now on" starts."""
        return self._position

    async def _run(self) -> None:
        failing_since: float | None = None
        delay = 0.5
        checked = -math.inf  # when the last read checked that the feed holds the position
        while not self.closed:
            try:
                now = self.timer()
                if self._follow is None or now - checked >= self.check_every:
                    entries = await self.read(self._position, READ_COUNT, self.block)
                    checked = now
                else:
                    entries = await self._follow(self._position, READ_COUNT, self.block)
            except FeedGap as gap:
                log.warning("change feed: %s; subscribers are told to reload", gap)
                self._restart(await self._newest())
                self.generation += 1
                self._wake()
                continue
            except redis.RedisError as exc:
                now = self.timer()
                failing_since = failing_since or now
                log.warning(
                    "change feed: Redis does not answer for %.0f s (%s); retrying in %.1f s",
                    now - failing_since,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if failing_since is not None:
                log.warning(
                    "change feed: Redis answers again after %.0f s",
                    self.timer() - failing_since,
                )
                failing_since, delay = None, 0.5
            if entries:
                self._append(entries)

    def _restart(self, newest: str) -> None:
        self._position = newest
        self._base = parse_id(newest)
        self._ids.clear()
        self._frames.clear()

    def _append(self, entries: list[Entry]) -> None:
        if not self.subscribers:  # nobody to send them to: no window, just the position
            self._restart(entries[-1][0])
            self._wake()
            return
        for entry in entries:
            frame = Frame.of(entry)
            self._ids.append(parse_id(frame.id))
            self._frames.append(frame)
        self._position = entries[-1][0]
        if len(self._ids) > 2 * self.window:  # trim in chunks: amortised O(1) per entry
            drop = len(self._ids) - self.window
            self._base = self._ids[drop - 1]
            del self._ids[:drop], self._frames[:drop]
        self._wake()

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change (new entries, a restart, closing)."""
        return self._changed

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- subscribers -------------------------------------------------------------------------
    def join(self) -> Subscription:
        if self.closed or self.subscribers >= self.max_subscribers:
            raise Full(
                f"this API process serves {self.subscribers} event streams, its maximum "
                f"(FIREWATCH_API_STREAM_MAX={self.max_subscribers}); retry, or add API processes"
            )
        self.subscribers += 1
        return Subscription(self)

    def after(self, position: str) -> list[Frame] | None:
        """The window's frames after `position`; None when the window does not reach back that
        far, or when `position` is newer than what the hub has read (read Redis instead: it
        says whether the feed holds the position at all)."""
        key = parse_id(position)
        if key < self._base or key > (self._ids[-1] if self._ids else self._base):
            return None
        return self._frames[bisect.bisect_right(self._ids, key) :]


class Subscription:
    """One client's place in the feed. `next_frames` waits for what follows its position."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.generation = hub.generation
        self.left = False

    async def next_frames(self, position: str, timeout: float) -> list[Frame] | None:
        """Frames after `position`, waiting up to `timeout` s for some: None when none came (send
        a keep-alive), [] when the hub changed without a frame for it (ask again). Reset when the
        feed no longer holds the position."""
        hub = self.hub
        if hub.generation != self.generation:
            self.generation = hub.generation
            raise Reset("the change feed was emptied or restored from an older copy")
        changed = hub.changed
        frames = hub.after(position)
        if frames is None:  # older than the window: from Redis, a page at a time
            try:
                entries = await hub.read(position, READ_COUNT, None)
            except FeedGap as gap:
                raise Reset(str(gap)) from None
            if entries:
                return [Frame.of(e) for e in entries]
            frames = []  # the hub has not read up to `position` yet: wait for it
        if frames or hub.closed:
            return frames
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancel on 3.11
                await changed.wait()
        except TimeoutError:
            return None
        return []

    def leave(self) -> None:
        if not self.left:
            self.left = True
            self.hub.subscribers -= 1
