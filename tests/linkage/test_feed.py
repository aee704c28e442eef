"""The change feed on a real Redis: one entry per change, written by the script that makes it,
nothing for what changes nothing, and readers that resume exactly where they stopped."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.linkage import codec, feed, keys
from firewatch.linkage.feed import FIELDS
from firewatch.linkage.model import FeedGap, InvalidTransition, QueryError, Resolution
from firewatch.linkage.server import RedisProcess, async_twin
from firewatch.linkage.service import Linkage
from firewatch.linkage.store import DispatchStore
from firewatch.rules.model import RoutingRules

from .conftest import T0, event, oid
from .test_closed_loop import HEAT, LosesScriptReplies


def _feed(client: redis.Redis) -> list[dict[str, str]]:
    r: Any = client
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in r.xrange(keys.FEED)]


def _brief(entries: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """kind, event, order (incident when none), state, by"""
    return [
        (e["kind"], e["event"], e["order"] or e["incident"], e["state"], e["by"]) for e in entries
    ]


def _snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    r: Any = client
    return {k: r.dump(k) for k in sorted(r.keys("fw:*"))}


def test_every_change_is_one_feed_entry_in_the_order_it_happened(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, severity="moderate"), event(n=2)])
    clock.advance(minutes=3)
    linkage.consume([event("updated", n=1, seq=1, severity="high", detections=2)])
    clock.advance(minutes=1)
    linkage.ack(oid(1), by="team:team-A")
    clock.advance(minutes=10)  # n=2 is 14 min old: past its 10-min SLA
    assert linkage.escalate() == [(oid(2), "village:V1")]
    linkage.arrive(oid(1), by="cli")
    linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT, note="kiln", by="admin:alice")
    linkage.consume([event("closed", n=1, seq=2, severity="high", detections=2)])
    linkage.arrive(oid(2))  # nobody named: acknowledged on arrival, then on scene

    entries = _feed(redis_client)
    assert _brief(entries) == [
        ("incident", "opened", oid(1), "open", ""),  # the incident's order, in the same step
        ("order", "created", oid(1), "pending", ""),
        ("incident", "opened", oid(2), "open", ""),
        ("order", "created", oid(2), "pending", ""),
        ("incident", "updated", oid(1), "open", ""),
        ("order", "severity", oid(1), "pending", ""),
        ("order", "ack", oid(1), "acknowledged", "team:team-A"),
        ("order", "escalated", oid(2), "pending", ""),
        ("order", "arrive", oid(1), "on_scene", "cli"),
        ("order", "close", oid(1), "closed", "admin:alice"),
        ("order", "mask", oid(1), "closed", "admin:alice"),
        ("incident", "closed", oid(1), "closed", ""),
        ("order", "incident_closed", oid(1), "closed", ""),
        ("order", "ack", oid(2), "acknowledged", ""),
        ("order", "arrive", oid(2), "on_scene", ""),
    ]
    assert all(tuple(e) == FIELDS for e in entries)  # one field layout for every entry
    opened, created = entries[0], entries[1]
    assert opened == {
        **dict.fromkeys(FIELDS, ""),
        "kind": "incident",
        "event": "opened",
        "incident": f"inc-{1:016x}",
        "order": oid(1),
        "event_id": f"inc-{1:016x}/0",
        "severity": "moderate",
        "state": "open",
        "team": "team-A",
        "village": "V1",
        "township": "T1",
        "district": "D1",
        "grid_id": "cell-1",
        "lat": repr(28.9 + 1 * 0.01),
        "lon": repr(118.9),
        "responder": "team:team-A",
        "at": codec.epoch(T0),
        "observed_at": codec.epoch(T0),
        "detail": "1 detection, opened by rule camera.confident",
    }
    assert created["detail"] == "dispatched to team:team-A" and created["event_id"] == ""
    where = ("team", "village", "township", "district", "grid_id", "lat", "lon", "responder")
    assert [created[k] for k in where] == [opened[k] for k in where]
    assert (created["severity"], created["by"], created["observed_at"]) == ("moderate", "", "")
    assert created["at"] == codec.epoch(T0) and created["incident"] == f"inc-{1:016x}"
    assert entries[5]["severity"] == "high" and entries[5]["detail"] == "severity rose to high"
    escalated = entries[7]
    assert escalated["responder"] == "village:V1" and escalated["at"] == codec.epoch(clock.now())
    assert escalated["detail"] == "to village:V1 (escalation 1)"
    close = entries[9]
    assert close["detail"] == "false_alarm (known_heat_source), by admin:alice: kiln"
    assert entries[10]["detail"] == f"suppression mask false-alarm-{oid(1)}, by admin:alice"
    assert entries[11]["observed_at"] == codec.epoch(T0) and entries[11]["severity"] == "high"

    # the log says the same, with who did it
    log = linkage.store.log(oid(1))
    assert [(e.kind, e.by) for e in log] == [
        ("created", None),
        ("notified", None),  # moderate: the township office too
        ("severity", None),
        ("notified", None),
        ("ack", "team:team-A"),
        ("arrive", "cli"),
        ("close", "admin:alice"),
        ("mask", "admin:alice"),
        ("incident_closed", None),
    ]
    assert log[4].detail == "acknowledged, by team:team-A" and log[5].detail == "on scene, by cli"
    last_two = [e.detail for e in linkage.store.log(oid(2))][-2:]
    assert last_two == ["acknowledged on arrival", "on scene"]


def test_what_changes_nothing_appends_nothing(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    events = [
        event(n=1),
        event(n=2, severity="high"),
        event("updated", n=1, seq=1, severity="high"),
    ]
    first = linkage.consume(events)
    assert (first.created, first.recorded, first.renotified) == (2, 3, 1)
    linkage.ack(oid(1), by="cli")
    linkage.close(oid(2), Resolution.FALSE_ALARM, cause=HEAT, by="cli")
    # opened + created twice, updated + severity, ack, close + mask
    assert len(_feed(redis_client)) == 9
    before = _snapshot(redis_client)

    again = linkage.consume(events)  # redelivered
    assert (again.created, again.duplicates, again.recorded, again.renotified) == (0, 2, 0, 0)
    assert not linkage.ack(oid(1), by="cli")[1]
    assert not linkage.ack(oid(1), by="someone else")[1]  # still one ack, by the first
    assert not linkage.close(oid(2), Resolution.FALSE_ALARM, cause=HEAT, by="cli")[1]
    with pytest.raises(InvalidTransition):
        linkage.arrive(oid(2), by="cli")
    clock.advance(hours=1)
    assert linkage.escalate() == []  # nothing is pending
    assert _snapshot(redis_client) == before

    # a new event that changes no order (no rise) is still recorded: one incident entry
    more = event("updated", n=1, seq=2, severity="high", detections=3)
    assert linkage.consume([more]).recorded == 1
    assert [e["event"] for e in _feed(redis_client)][9:] == ["updated"]
    after = _snapshot(redis_client)
    assert linkage.consume([more]).recorded == 0
    assert _snapshot(redis_client) == after


def test_an_ack_whose_reply_was_lost_is_one_entry_after_the_retry(
    redis_session: RedisProcess, redis_client: redis.Redis, routing: RoutingRules, clock: FakeClock
) -> None:
    client = LosesScriptReplies(unix_socket_path=str(redis_session.socket))
    linkage = Linkage(client, routing, clock)
    linkage.consume([event()])
    client.lose_next = True
    with pytest.raises(redis.ConnectionError):
        linkage.ack(oid(1), by="team:team-A")
    order, changed = linkage.ack(oid(1), by="team:team-A")  # the phone retries
    assert not changed and order.acked_at == T0
    assert [e["event"] for e in _feed(redis_client)] == ["opened", "created", "ack"]
    client.close()


def test_a_reader_resumes_after_the_last_id_it_saw_and_misses_nothing(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    store = linkage.store
    assert store.feed_last_id() == "0-0" and store.feed_since(None) == []
    linkage.consume([event(n=n) for n in range(1, 8)])
    everything = [(i.decode(), f) for i, f in redis_client.xrange(keys.FEED)]
    assert len(everything) == 14

    read, last = [], None
    while page := store.feed_since(last, count=3):
        assert len(page) <= 3
        read += page
        last = page[-1][0]
    assert [i for i, _ in read] == [i for i, _ in everything]
    assert [f for _, f in read] == _feed(redis_client)
    assert last == store.feed_last_id()

    clock.advance(minutes=1)
    linkage.ack(oid(3), by="team:team-A")  # happens while the reader is away
    (missed,) = store.feed_since(last)
    assert missed[1]["event"] == "ack" and missed[1]["order"] == oid(3)
    assert store.feed_since(missed[0]) == []
    assert store.feed_since(read[5][0], count=2) == read[6:8]  # from any id it was given

    for bad in ("yesterday", "1-2-3", "", "-1-0", "99999999999999999999999-0"):
        with pytest.raises(QueryError, match="not a change feed entry id"):
            store.feed_since(bad)
    with pytest.raises(QueryError, match="count must be"):
        store.feed_since(None, count=0)


def test_a_blocking_read_returns_the_next_change_as_it_happens(
    linkage: Linkage, clock: FakeClock
) -> None:
    linkage.consume([event()])
    last = linkage.store.feed_last_id()
    started = time.monotonic()
    assert linkage.store.feed_since(last, block=timedelta(milliseconds=200)) == []
    assert time.monotonic() - started >= 0.15

    got: list[list[tuple[str, dict[str, str]]]] = []
    reader = threading.Thread(
        target=lambda: got.append(linkage.store.feed_since(last, block=timedelta(seconds=10)))
    )
    reader.start()
    time.sleep(0.2)
    linkage.ack(oid(1), by="team:team-A")
    reader.join(timeout=10)
    assert not reader.is_alive()
    ((entry_id, fields),) = got[0]
    assert fields["event"] == "ack" and entry_id == linkage.store.feed_last_id()


def test_following_the_feed_reads_what_since_reads_in_one_round_trip(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    """feed.afollow (the API hub's read between its checks): the entries after an id, as
    feed.since gives them, and a wait for the next change; one XREAD, no transaction."""
    linkage.consume([event(n=n) for n in range(1, 4)])
    everything = linkage.store.feed_since(None)
    twin = async_twin(redis_client)

    async def follow() -> None:
        try:
            assert await feed.afollow(twin, None, count=100) == everything
            assert await feed.afollow(twin, everything[1][0], count=2) == everything[2:4]
            newest = everything[-1][0]
            started = time.monotonic()
            assert await feed.afollow(twin, newest, block=timedelta(milliseconds=200)) == []
            assert time.monotonic() - started >= 0.15
            commands = redis_client.info("commandstats")
            await feed.afollow(twin, newest)
            after = redis_client.info("commandstats")
            assert after["cmdstat_xread"]["calls"] == commands["cmdstat_xread"]["calls"] + 1
            assert after.get("cmdstat_multi", {}).get("calls") == commands.get(
                "cmdstat_multi", {}
            ).get("calls")
        finally:
            await twin.aclose()

    asyncio.run(follow())


def test_a_reader_told_of_a_gap_when_the_feed_was_trimmed_past_its_id(
    redis_client: redis.Redis, routing: RoutingRules
) -> None:
    store = DispatchStore(redis_client, routing, feed_maxlen=50)
    store.dispatch([event(n=1)], T0)
    early = store.feed_last_id()
    store.dispatch([event(n=n) for n in range(2, 301)], T0)  # 598 more entries
    r: Any = redis_client
    length = r.xlen(keys.FEED)
    assert 50 <= length < 600  # trimmed, approximately, never below the maxlen
    with pytest.raises(FeedGap, match=f"trimmed after {early}"):
        store.feed_since(early)
    assert len(store.feed_since(None, count=1000)) == length  # a new reader starts at the oldest
    last = store.feed_last_id()
    assert store.feed_since(last) == []
    ms, seq = (int(x) for x in last.split("-"))
    with pytest.raises(FeedGap, match=f"has no entry {ms + 1}-{seq}"):
        store.feed_since(f"{ms + 1}-{seq}")  # an id from another (or an emptied) feed
    redis_client.delete(keys.FEED)
    with pytest.raises(FeedGap, match="it is empty"):
        store.feed_since(last)
