"""Device health in the linkage queue: maintenance orders, never fire warnings, on a real Redis."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.linkage import keys
from firewatch.linkage.maintenance import maintenance_id
from firewatch.linkage.model import DispatchError, InvalidTransition, OrderNotFound
from firewatch.linkage.service import Linkage
from firewatch.linkage.transitions import OrderForbidden
from firewatch.model import DETECTIONS, DeviceEvent, DeviceEventKind, Source
from firewatch.rules import load_rules

from .conftest import ROOT, T0, event

LOCAL_DAY = date(2026, 4, 4)  # T0 is 10:00 of it in the report's +08:00


def device(
    kind: str, minutes: float, dev: str | None = "s1", township: str = "T1", **extra: Any
) -> DeviceEvent:
    at = T0 + timedelta(minutes=minutes)
    fields: dict[str, Any] = {
        "event": DeviceEventKind(kind),
        "event_id": f"dev-{kind}-{dev}-{minutes}",
        "observed_at": at,
        "device_id": dev,
        "source": Source.SENSOR if dev else None,
        "grid_id": "cell-1",
        "grid_name": "cell 1",
        "team": "team-A",
        "village": "V1",
        "township": township,
        "district": "D1",
        "lat": 28.91,
        "lon": 118.9,
    }
    fields.update(extra)
    return DeviceEvent(**fields)


def _text(h: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in h.items()}


def _stream(client: redis.Redis, key: str) -> list[dict[str, str]]:
    return [_text(fields) for _, fields in client.xrange(key)]


def test_a_silent_device_opens_a_maintenance_order_for_its_team_not_a_fire_warning(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    down = device("device_down", 0, last_heard=T0 - timedelta(minutes=30), interval_s=600.0)
    counts = linkage.consume([down])
    assert (counts.maintenance_opened, counts.created) == (1, 0)
    mid = maintenance_id(down.event_id)
    order = _text(redis_client.hgetall(keys.maintenance(mid)))
    assert order["state"] == "open" and order["kind"] == "device" and order["subject"] == "s1"
    assert float(order["since"]) == T0.timestamp()
    assert float(order["last_heard"]) == (T0 - timedelta(minutes=30)).timestamp()
    assert (order["team"], order["township"], order["interval_s"]) == ("team-A", "T1", "600.0")
    assert redis_client.zrange(keys.MAINT_OPEN, 0, -1) == [mid.encode()]
    assert redis_client.get(keys.maintenance_subject("device", "s1")) == mid.encode()
    (told,) = _stream(redis_client, keys.notify("team:team-A"))
    assert (told["kind"], told["order"], told["event"]) == ("maintenance", mid, "device_down")
    assert "s1" in told["text"] and "silent since" in told["text"]
    assert _stream(redis_client, keys.notify("township:T1")) == []  # rules: device_down: [team]
    (entry,) = _stream(redis_client, keys.FEED)
    assert (entry["kind"], entry["event"], entry["order"], entry["state"]) == (
        "maintenance",
        "device_down",
        mid,
        "open",
    )
    # not a fire warning: the dispatch report counts nothing, there is no dispatch order
    report = linkage.report()
    assert report.rows[0].issued == 0
    assert redis_client.zcard(keys.ORDERS_BY_CREATED) == 0


def test_the_device_back_resolves_its_order_and_counts_its_hours_down_per_day(
    linkage: Linkage, redis_client: redis.Redis, clock: FakeClock
) -> None:
    # down at 22:00 local (+08:00), back at 02:00 the next day: 2 h on each day
    start, end = 12 * 60, 16 * 60
    down = device("device_down", start)
    linkage.consume([down])
    clock.set(T0 + timedelta(minutes=end))
    counts = linkage.consume([device("device_up", end, silent_s=4 * 3600.0)])
    assert counts.maintenance_resolved == 1
    mid = maintenance_id(down.event_id)
    order = _text(redis_client.hgetall(keys.maintenance(mid)))
    assert order["state"] == "resolved" and float(order["silent_s"]) == 4 * 3600
    assert float(order["resolved_at"]) == (T0 + timedelta(minutes=end)).timestamp()
    assert redis_client.zcard(keys.MAINT_OPEN) == 0
    assert redis_client.get(keys.maintenance_subject("device", "s1")) is None
    day = (LOCAL_DAY - date(1970, 1, 1)).days
    first = _text(redis_client.hgetall(keys.health(day)))
    second = _text(redis_client.hgetall(keys.health(day + 1)))
    assert float(first["down_s|township:T1"]) == 2 * 3600 == float(second["down_s|all"])
    assert first["downs|all"] == "1" and "downs|all" not in second
    told = _stream(redis_client, keys.notify("team:team-A"))
    assert [m["kind"] for m in told] == ["maintenance", "maintenance_over"]
    assert "back after 4.0 h" in told[1]["text"]
    feed = _stream(redis_client, keys.FEED)
    assert [(e["event"], e["state"]) for e in feed] == [
        ("device_down", "open"),
        ("device_up", "resolved"),
    ]


def test_a_team_acknowledges_its_open_maintenance_order_once(
    linkage: Linkage, redis_client: redis.Redis, clock: FakeClock
) -> None:
    down = device("device_down", 0)
    linkage.consume([down, device("device_down", 0, dev="s2", team="team-B")])
    mid = maintenance_id(down.event_id)
    with pytest.raises(OrderForbidden, match=f"{mid} belongs to team team-A, not team-B"):
        linkage.maintenance.ack(mid, "team:team-B", clock.now(), team="team-B")
    with pytest.raises(OrderNotFound, match="no maintenance order 'mnt-nothing'"):
        linkage.maintenance.ack("mnt-nothing", "admin:alice", clock.now())
    with pytest.raises(DispatchError, match="who did it must be 1 to 200 printable"):
        linkage.maintenance.ack(mid, "x" * 201, clock.now())
    assert "acked_at" not in _text(redis_client.hgetall(keys.maintenance(mid)))
    clock.advance(minutes=7)
    order, changed = linkage.maintenance.ack(mid, "team:team-A", clock.now(), team="team-A")
    assert changed and order.state == "open"
    assert (order.acked_at, order.acked_by) == (clock.now(), "team:team-A")
    stored = _text(redis_client.hgetall(keys.maintenance(mid)))
    assert (stored["acked_by"], float(stored["acked_at"])) == (
        "team:team-A",
        clock.now().timestamp(),
    )
    clock.advance(minutes=1)
    again, changed = linkage.maintenance.ack(mid, "admin:alice", clock.now())
    assert not changed and again.acked_by == "team:team-A"  # the first who answered stays
    feed = _stream(redis_client, keys.FEED)
    acks = [e for e in feed if e["event"] == "ack"]
    assert [(e["kind"], e["order"], e["by"], e["team"]) for e in acks] == [
        ("maintenance", mid, "team:team-A", "team-A")
    ]
    clock.advance(minutes=30)
    linkage.consume([device("device_up", 40)])
    with pytest.raises(InvalidTransition, match=f"{mid} is resolved"):
        linkage.maintenance.ack(mid, "team:team-A", clock.now(), team="team-A")
    resolved = linkage.maintenance.get(mid)
    assert resolved is not None and resolved.acked_by == "team:team-A"


def test_redelivered_device_events_change_nothing(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    events = [
        device("device_new", -60),
        device("device_down", 0),
        device("cell_blind", 0, dev=None, devices=1),
        device("device_up", 90),
        device("cell_watched", 90, dev=None, devices=1),
    ]
    first = linkage.consume(events)
    assert (first.devices_new, first.maintenance_opened, first.maintenance_resolved) == (1, 2, 2)
    snapshot = {k: redis_client.dump(k) for k in sorted(redis_client.keys("fw:*"))}
    again = linkage.consume(events)
    assert (again.devices_new, again.maintenance_opened, again.maintenance_resolved) == (0, 0, 0)
    assert {k: redis_client.dump(k) for k in sorted(redis_client.keys("fw:*"))} == snapshot


def test_a_blind_cell_is_told_to_its_team_and_township(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    blind = device("cell_blind", 0, dev=None, devices=3)
    linkage.consume([blind])
    for target in ("team:team-A", "township:T1"):
        (told,) = _stream(redis_client, keys.notify(target))
        assert told["event"] == "cell_blind" and "3 watching devices" in told["text"]
    order = _text(redis_client.hgetall(keys.maintenance(maintenance_id(blind.event_id))))
    assert (order["kind"], order["subject"], order["devices"]) == ("cell", "cell-1", "3")


def test_the_report_gives_uptime_and_blind_cell_hours_per_township(
    linkage: Linkage, clock: FakeClock
) -> None:
    # four devices in T1 and one in T2 first heard at local midnight (16:00 UTC the day before
    # T0); s1 silent 6 h and back, s2 silent from 6 h before the report on; a cell of T1 blind
    # for 3 h. The report at the day's end (T0 + 14 h is local midnight).
    midnight = -10 * 60
    news = [device("device_new", midnight, dev=f"s{i}") for i in range(1, 5)]
    news.append(device("device_new", midnight, dev="t1", township="T2"))
    linkage.consume(news)
    linkage.consume(
        [
            device("device_down", 0, dev="s1"),
            device("device_up", 6 * 60, dev="s1"),
            device("cell_blind", 60, dev=None, devices=2),
            device("cell_watched", 4 * 60, dev=None, devices=2),
            device("device_down", 8 * 60, dev="s2"),
            event(n=7),  # one fire warning beside them
        ]
    )
    clock.set(T0 + timedelta(hours=14))
    report = linkage.report(LOCAL_DAY, LOCAL_DAY)
    assert report.rows[0].issued == 1  # the fire warning, and only it
    rows = {r.scope: r for r in report.devices}
    t1 = rows["township:T1"]
    assert (t1.devices, t1.outages, t1.blind) == (4, 2, 1)
    assert t1.down_hours == 12.0  # s1 6 h + s2 6 h (still down: up to now)
    assert t1.uptime == round(1 - 12 / (4 * 24), 6)
    assert t1.blind_cell_hours == 3.0
    t2 = rows["township:T2"]
    assert (t2.devices, t2.down_hours, t2.uptime) == (1, 0.0, 1.0)
    assert rows["all"].devices == 5
    assert "uptime" in report.render() and report.as_dict()["devices"][0]["scope"] == "all"


def test_an_engines_device_events_become_maintenance_orders_end_to_end(
    linkage: Linkage, redis_client: redis.Redis, grid_file: Path
) -> None:
    grid = load_grid(grid_file)
    rules = load_rules(ROOT / "rules").model_copy(update={"masks": []})
    engine = Engine(grid, load_index(grid, None), rules)
    base = {"source": "sensor", "lat": 28.945, "lon": 118.855}
    records = [
        {
            **base,
            "id": f"{dev}@{m}",
            "device_id": dev,
            "observed_at": (T0 + timedelta(minutes=m)).isoformat(),
            "lon": 118.855 + 0.03 * k,
            "readings": {"temperature_c": 20.0},
        }
        for m in range(0, 8 * 60 + 1, 10)
        for k, dev in enumerate(("a", "b"))
        if not (dev == "a" and 60 < m < 5 * 60)
    ]
    events = engine.process(DETECTIONS.validate_python(records)) + engine.flush()
    counts = linkage.consume(events)
    assert (counts.devices_new, counts.maintenance_opened, counts.maintenance_resolved) == (
        2,
        2,  # a, and its cell (a was its only watcher)
        2,
    )
    assert redis_client.hlen(keys.DEVICES) == 2
    assert redis_client.zcard(keys.MAINT_OPEN) == 0
    opened = [e for e in _stream(redis_client, keys.FEED) if e["state"] == "open"]
    assert sorted(e["event"] for e in opened) == ["cell_blind", "device_down"]
