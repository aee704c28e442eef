"""The change feed's hub (api/fanout.py) against a fake feed: one reader however many
subscribers, a window with Redis behind it, Redis outages waited out, a lost feed a reset."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
import redis

from firewatch.api.fanout import Frame, Full, Hub, Reset
from firewatch.linkage.feed import Entry
from firewatch.linkage.model import FeedGap


class FakeFeed:
    """A change feed in memory: entries `<n>-0`; `down` makes reads fail as Redis would."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.reads = 0
        self.catch_ups: list[str | None] = []  # positions read without waiting (subscribers')
        self.down = False
        self.gap = False

    def add(self, n: int) -> None:
        for _ in range(n):
            i = len(self.entries) + 1
            self.entries.append((f"{i}-0", {"kind": "order", "order": f"o{i}"}))

    async def read(self, after: str | None, count: int, block: timedelta | None) -> list[Entry]:
        self.reads += 1
        if block is None:
            self.catch_ups.append(after)
        await asyncio.sleep(0.001 if block is not None else 0)  # as Redis would, it waits
        if self.down:
            raise redis.ConnectionError("Connection refused")
        if self.gap:
            self.gap = False
            raise FeedGap("change feed fw:feed has no entry 99-0")
        position = int((after or "0-0").split("-")[0])
        return [e for e in self.entries if int(e[0].split("-")[0]) > position][:count]

    async def newest(self) -> str:
        return self.entries[-1][0] if self.entries else "0-0"


async def settle(hub: Hub, position: str) -> None:
    for _ in range(200):
        if hub.position == position:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the hub is at {hub.position}, not {position}")


def ids(frames: list[Frame] | None) -> list[str]:
    assert frames is not None
    return [f.id for f in frames]


def test_subscribers_share_one_reader_and_old_positions_are_read_from_the_feed() -> None:
    async def scenario() -> None:
        feed = FakeFeed()
        feed.add(5)
        hub = Hub(feed.read, feed.newest, max_subscribers=100, window=4, block=timedelta(0))
        await hub.start()
        assert hub.position == "5-0"  # from now on
        subs = [hub.join() for _ in range(50)]
        feed.add(12)
        await settle(hub, "17-0")
        got = [await s.next_frames("5-0", 1.0) for s in subs]
        # the window (4..8 newest entries) does not reach back to 5-0: that one is from the feed
        assert all(ids(g) == [f"{i}-0" for i in range(6, 18)] for g in got)
        newest = [await s.next_frames("15-0", 1.0) for s in subs]
        assert all(ids(n) == ["16-0", "17-0"] for n in newest)
        assert feed.catch_ups == ["5-0"] * 50  # the window served the rest
        assert await subs[0].next_frames("17-0", 0.05) is None  # a keep-alive
        with pytest.raises(Full, match="FIREWATCH_API_STREAM_MAX=100"):
            for _ in range(51):
                hub.join()
        await hub.stop()

    asyncio.run(scenario())


def test_a_redis_outage_is_waited_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        feed = FakeFeed()
        hub = Hub(feed.read, feed.newest, max_subscribers=10, block=timedelta(0))
        await hub.start()
        feed.down = True
        await asyncio.sleep(0.1)
        feed.add(2)
        feed.down = False
        await settle(hub, "2-0")
        sub = hub.join()
        assert ids(await sub.next_frames("0-0", 1.0)) == ["1-0", "2-0"]
        await hub.stop()

    with caplog.at_level(logging.WARNING, logger="firewatch.api.fanout"):
        asyncio.run(scenario())
    assert "Redis does not answer for 0 s (Connection refused)" in caplog.text
    assert "Redis answers again after" in caplog.text


def test_a_feed_that_lost_the_hubs_place_resets_every_subscriber() -> None:
    async def scenario() -> None:
        feed = FakeFeed()
        feed.add(3)
        hub = Hub(feed.read, feed.newest, max_subscribers=10, block=timedelta(0))
        await hub.start()
        sub = hub.join()
        feed.gap = True
        for _ in range(100):
            if hub.generation:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(Reset, match="emptied or restored"):
            await sub.next_frames("3-0", 1.0)
        feed.add(1)
        await settle(hub, "4-0")
        assert ids(await sub.next_frames("3-0", 1.0)) == ["4-0"]
        hub.close()
        assert await sub.next_frames("4-0", 1.0) == []
        sub.leave()
        sub.leave()
        assert hub.subscribers == 0
        await hub.stop()

    asyncio.run(scenario())


def test_stop_ends_a_reader_whose_read_lost_the_cancel() -> None:
    """On Python 3.11 redis-py can lose a cancel (asyncio.wait_for around its socket write,
    CPython gh-86296): a CI run hung 300 s in the API's shutdown. Here every read swallows it."""
    swallowed = 0

    async def deaf_read(after: str | None, count: int, block: timedelta | None) -> list[Entry]:
        nonlocal swallowed
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            swallowed += 1
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        return []

    async def newest() -> str:
        return "0-0"

    async def scenario() -> None:
        hub = Hub(deaf_read, newest, max_subscribers=10)
        await hub.start()
        await asyncio.sleep(0.02)
        async with asyncio.timeout(2):
            await hub.stop()
        assert swallowed >= 1

    asyncio.run(scenario())


def test_a_hub_that_follows_checks_the_feed_now_and_then_and_keeps_no_window_for_nobody() -> None:
    """With a `follow` read (XREAD alone) the hub reads on without the gap check, which it makes
    at most every check_every s (at every ack under load, the check's transaction was half of
    what the feed cost the API); the check still finds a lost position. With no subscriber it
    keeps no frames, and one that comes later with an older position catches up from the feed.
    The hub's timer is the test's: the checks are counted, not timed."""
    follows = 0
    now = [0.0]

    async def scenario() -> None:
        nonlocal follows
        feed = FakeFeed()

        async def follow(after: str | None, count: int, block: timedelta | None) -> list[Entry]:
            nonlocal follows
            follows += 1
            await asyncio.sleep(0.001)
            position = int((after or "0-0").split("-")[0])
            return [e for e in feed.entries if int(e[0].split("-")[0]) > position][:count]

        async def turns(n: int) -> None:  # the hub reads n more times
            until = follows + n
            for _ in range(500):
                if follows >= until:
                    return
                await asyncio.sleep(0.001)
            raise AssertionError(f"the hub read {follows} times, not {until}")

        hub = Hub(
            feed.read,
            feed.newest,
            max_subscribers=10,
            block=timedelta(0),
            follow=follow,
            check_every=0.2,
            timer=lambda: now[0],
        )
        await hub.start()
        for n in range(1, 41):
            feed.add(1)
            await settle(hub, f"{n}-0")
        assert hub.after("0-0") is None and hub.after("40-0") == []  # no window: nobody listens
        assert feed.reads == 1  # the first read checked; no time has passed since
        checked = feed.reads
        for _ in range(5):  # 0.5 s in steps of 0.1 s, the hub reading on at each
            now[0] += 0.1
            await turns(3)
        assert follows > 40 and feed.reads - checked == 2  # checked at 0.2 s and at 0.4 s
        sub = hub.join()
        assert ids(await sub.next_frames("38-0", 1.0)) == ["39-0", "40-0"]  # from the feed
        assert feed.catch_ups == ["38-0"]
        feed.add(1)
        await settle(hub, "41-0")
        assert ids(await sub.next_frames("40-0", 1.0)) == ["41-0"]  # from the window
        feed.gap = True  # the feed lost the hub's place: the next check finds it
        now[0] += 0.2
        for _ in range(100):
            if hub.generation:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(Reset):
            await sub.next_frames("41-0", 1.0)
        await hub.stop()

    asyncio.run(scenario())
