"""GET /v1/stream on a real uvicorn server and a real Redis: every change of the change feed
(fw:feed, read here with XRANGE) reaches a subscriber in order with its entry id; a reconnect
with Last-Event-ID gets exactly what it missed, from the hub's window or from Redis."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest
import redis
from fastapi import FastAPI

from firewatch.clock import FakeClock
from firewatch.linkage import keys
from firewatch.linkage.model import Resolution
from firewatch.linkage.service import Linkage

from ..linkage.conftest import event, oid
from .conftest import Bearer
from .live import serving
from .sse import EventStream, Frame


def feed(r: redis.Redis, after: str = "-") -> list[tuple[str, dict[str, str]]]:
    """The change feed as Redis holds it, after `after` (exclusive)."""
    start = "-" if after == "-" else f"({after}"
    return [
        (i.decode(), {k.decode(): v.decode() for k, v in f.items()})
        for i, f in r.xrange(keys.FEED, start, "+")
    ]


def as_sent(frames: list[Frame]) -> list[tuple[str, dict[str, str]]]:
    return [(f.id or "", json.loads("\n".join(f.data))) for f in frames]


def work(linkage: Linkage, clock: FakeClock, n: int, team: str = "team-A") -> None:
    """Incident n opened, its order created, acknowledged and closed: several feed entries."""
    linkage.consume([event(n=n, team=team)])
    clock.advance(minutes=2)
    linkage.ack(oid(n), by=f"team:{team}")
    clock.advance(minutes=30)
    linkage.close(oid(n), Resolution.EXTINGUISHED, None, None, by=f"team:{team}")


def quiet(stream: EventStream, seconds: float) -> bool:
    """No event with an id arrives for `seconds` (keep-alives may)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = stream.next(timeout=left)
        except queue.Empty:
            return True
        if frame is None or frame.id is not None:
            return False
    return True


@pytest.fixture
def base(app: FastAPI) -> Iterator[str]:
    with serving(app) as url:
        yield url


def test_every_change_reaches_a_subscriber_in_feed_order_with_its_entry_id(
    base: str, bearer: Bearer, linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    start = linkage.store.feed_last_id()
    with EventStream(f"{base}/v1/stream?after={start}", bearer("dashboard")) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        hello = stream.next()
        assert hello is not None and hello.id is None and hello.retry is not None
        work(linkage, clock, 1)
        expected = feed(redis_client, start)
        assert len(expected) >= 4
        frames = stream.events(len(expected))
    assert as_sent(frames) == expected
    assert [f.event for f in frames] == [fields["kind"] for _, fields in expected]
    assert {"incident", "order"} <= {f.event for f in frames}


def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(
    app: FastAPI, bearer: Bearer, linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    app.state.firewatch.hub.window = 3  # small: the old position is served from Redis
    with serving(app) as base:
        headers = bearer("dashboard")
        with EventStream(f"{base}/v1/stream", headers) as stream:
            work(linkage, clock, 1)
            seen = stream.events(2)
        last = seen[-1].id
        assert last is not None
        for n in range(2, 6):  # more than the window while the client is away
            work(linkage, clock, n)
        missed = feed(redis_client, last)
        assert len(missed) > 3 * app.state.firewatch.hub.window
        with EventStream(f"{base}/v1/stream", {**headers, "Last-Event-ID": last}) as again:
            frames = again.events(len(missed))
            assert quiet(again, 0.5)  # nothing more: nothing twice
        assert as_sent(frames) == missed


def test_keep_alives_carry_no_id_and_a_closed_client_gives_its_place_back(
    make_app: Callable[..., FastAPI], bearer: Bearer
) -> None:
    app = make_app(api_stream_keepalive=0.2, api_stream_max=1)
    hub = app.state.firewatch.hub
    with serving(app) as base:
        headers = bearer("dashboard")
        with EventStream(f"{base}/v1/stream", headers) as stream:
            stream.next()  # the opening comment
            pings = [stream.next(timeout=2.0) for _ in range(3)]
            assert all(p is not None and p.id is None and p.comments for p in pings)
            with EventStream(f"{base}/v1/stream", headers) as second:
                assert second.status == 503
                assert "FIREWATCH_API_STREAM_MAX=1" in json.loads(second.body)["detail"]
        deadline = time.monotonic() + 5
        while hub.subscribers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.subscribers == 0
        with EventStream(f"{base}/v1/stream", headers) as third:
            assert third.status == 200


def test_a_position_the_feed_does_not_hold_is_a_reset_and_a_bad_one_400(
    base: str, bearer: Bearer, linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    headers = bearer("dashboard")
    work(linkage, clock, 1)
    with EventStream(f"{base}/v1/stream", {**headers, "Last-Event-ID": "99999999999999-0"}) as s:
        s.next()
        reset = s.next()
        assert reset is not None and reset.event == "reset" and reset.id is None
        assert "no entry 99999999999999-0" in json.loads(reset.data[0])["reason"]
        before = linkage.store.feed_last_id()
        work(linkage, clock, 2)  # after the reset, the stream goes on from now
        new = feed(redis_client, before)
        assert as_sent(s.events(len(new))) == new
    with EventStream(f"{base}/v1/stream?after=yesterday", headers) as bad:
        assert bad.status == 400
        assert "after: 'yesterday' is not a change feed entry id" in json.loads(bad.body)["detail"]


def test_who_may_subscribe_and_the_session_cookie_for_eventsource(
    base: str, bearer: Bearer
) -> None:
    assert httpx.get(f"{base}/v1/stream").status_code == 401
    with EventStream(f"{base}/v1/stream", bearer("ingest")) as ingest:
        assert ingest.status == 403
    with httpx.Client(base_url=base) as browser:
        team = bearer("team:team-A")
        assert browser.post("/v1/session", headers=team).status_code == 204
        cookie = browser.cookies.get("fw_session")
        assert cookie and cookie == team["Authorization"].removeprefix("Bearer ")
        assert browser.get("/v1/whoami").json()["role"] == "team:team-A"  # the cookie, on GET
        refused = browser.post(f"/v1/dispatches/{oid(9)}/ack")  # never for a change
        assert refused.status_code == 401
        assert browser.delete("/v1/session").status_code == 204
        assert browser.get("/v1/whoami").status_code == 401


def test_whoami_names_the_token_and_gives_the_server_clock_and_feed_position(
    base: str, bearer: Bearer, linkage: Linkage, clock: FakeClock
) -> None:
    work(linkage, clock, 1)
    me = httpx.get(f"{base}/v1/whoami", headers=bearer("admin", name="alice")).json()
    assert me["name"] == "alice" and me["role"] == "admin" and me["team"] is None
    now = datetime.fromisoformat(me["now"])
    assert now == clock.now() and now.utcoffset() == timedelta(hours=8)  # the report's days
    assert me["rate"] == 1.0
    assert me["feed_id"] == linkage.store.feed_last_id() != "0-0"


def test_stopping_the_server_ends_open_streams_at_once(app: FastAPI, bearer: Bearer) -> None:
    headers = bearer("dashboard")
    with serving(app) as base:
        stream = EventStream(f"{base}/v1/stream", headers)
        stream.next()
        began = time.monotonic()
    assert time.monotonic() - began < 3  # not the graceful-shutdown timeout, nor for ever
    assert stream.next(timeout=2) is None  # the server ended it
    stream.close()


def test_a_team_token_receives_its_own_teams_changes_only(
    base: str, bearer: Bearer, linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    start = linkage.store.feed_last_id()
    with EventStream(f"{base}/v1/stream?after={start}", bearer("team:team-B")) as stream:
        work(linkage, clock, 1, team="team-A")
        work(linkage, clock, 2, team="team-B")
        own = [e for e in feed(redis_client, start) if e[1]["team"] == "team-B"]
        assert own and len(own) < len(feed(redis_client, start))
        assert as_sent(stream.events(len(own))) == own
        assert quiet(stream, 0.3)
