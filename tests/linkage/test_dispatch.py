"""Dispatch, notification, lifecycle and escalation of orders, on a real Redis in simulated time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from pydantic import ValidationError

from firewatch.clock import FakeClock
from firewatch.linkage import keys
from firewatch.linkage.model import (
    Action,
    DispatchError,
    InvalidTransition,
    OrderNotFound,
    OrderState,
    Resolution,
)
from firewatch.linkage.service import Linkage
from firewatch.linkage.transitions import OrderForbidden
from firewatch.model import Severity
from firewatch.rules.model import RoutingRules

from .conftest import T0, event, oid


def _stream(client: redis.Redis, target: str) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(keys.notify(target))
    ]


def test_opened_incident_becomes_one_order_for_the_cells_team(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    seen = T0 - timedelta(minutes=3)
    counts = linkage.consume([event(severity="moderate", first_seen=seen)])
    assert (counts.created, counts.duplicates) == (1, 0)
    order = linkage.store.get(oid(1))
    assert order.state is OrderState.PENDING
    assert order.detected_at == seen  # the `opened` event's first_seen
    assert order.responder == "team:team-A" and order.team == "team-A"
    assert (
        order.created_at == T0 and order.sla_deadline == T0 + linkage.routing.sla[Severity.MODERATE]
    )
    assert [o.id for o in linkage.store.open_orders("team-A")] == [oid(1)]
    (told,) = _stream(redis_client, "team:team-A")
    assert (told["kind"], told["order"], told["severity"]) == ("dispatch", oid(1), "moderate")
    assert len(_stream(redis_client, "township:T1")) == 1  # moderate: the township office too
    assert _stream(redis_client, "org:forestry_bureau") == []  # only from high


def test_redelivered_events_change_nothing(linkage: Linkage, redis_client: redis.Redis) -> None:
    events = [event(n=1), event(n=2, severity="high"), event("updated", n=1, severity="high")]
    first = linkage.consume(events)
    snapshot = {k: redis_client.dump(k) for k in sorted(redis_client.keys("fw:*"))}
    again = linkage.consume(events)
    assert (first.created, first.renotified) == (2, 1)
    assert (again.created, again.duplicates, again.renotified) == (0, 2, 0)
    after = {k: redis_client.dump(k) for k in sorted(redis_client.keys("fw:*"))}
    assert after == snapshot


def test_only_a_rise_in_severity_renotifies(linkage: Linkage, redis_client: redis.Redis) -> None:
    linkage.consume([event(severity="moderate")])
    counts = linkage.consume(
        [
            event("updated", severity="moderate"),  # a new source joined: no rise
            event("updated", severity="low"),
            event("updated", severity="critical"),
        ]
    )
    assert counts.renotified == 1
    assert linkage.store.get(oid(1)).severity is Severity.CRITICAL
    team = _stream(redis_client, "team:team-A")
    assert [m["kind"] for m in team] == ["dispatch", "severity"]
    assert len(_stream(redis_client, "org:fire_brigade")) == 1
    assert len(_stream(redis_client, "district:D1")) == 1


def test_a_team_the_fire_reaches_is_told_once_and_no_second_order(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(teams=["team-A"])])
    spread = event("updated", seq=1, teams=["team-A", "team-B"])
    further = event("updated", seq=2, teams=["team-A", "team-B", "team-C"])
    counts = linkage.consume([spread, spread, further])  # the first one delivered twice
    assert (counts.reached, counts.created, counts.renotified) == (2, 0, 0)
    told = [_stream(redis_client, f"team:{t}") for t in ("team-B", "team-C")]
    assert [[(m["kind"], m["order"]) for m in stream] for stream in told] == [
        [("reached", oid(1))],
        [("reached", oid(1))],
    ]
    assert [m["kind"] for m in _stream(redis_client, "team:team-A")] == ["dispatch"]
    assert len(redis_client.keys("fw:order:*:log")) == 1  # still the one order, team-A's
    assert linkage.store.get(oid(1)).team == "team-A"
    log = [(e.kind, e.detail) for e in linkage.store.log(oid(1))]
    assert log[1:] == [
        ("reached", "the fire reached the cells of team:team-B: told"),
        ("reached", "the fire reached the cells of team:team-C: told"),
    ]
    feed = [fields[b"event"] for _, fields in redis_client.xrange(keys.FEED)]
    assert feed.count(b"reached") == 2


def test_a_closed_order_tells_no_team_the_fire_reaches(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(teams=["team-A"])])
    linkage.close(oid(1), Resolution.EXTINGUISHED)
    counts = linkage.consume([event("updated", seq=1, teams=["team-A", "team-B"])])
    assert counts.reached == 0 and _stream(redis_client, "team:team-B") == []


def test_lifecycle_is_timestamped_logged_and_idempotent(linkage: Linkage, clock: FakeClock) -> None:
    linkage.consume([event()])
    clock.advance(minutes=4)
    order, changed = linkage.ack(oid(1))
    assert changed and order.state is OrderState.ACKNOWLEDGED and order.acked_at == clock.now()
    assert order.sla_deadline is None
    _, again = linkage.ack(oid(1))
    assert not again
    clock.advance(minutes=30)
    order, _ = linkage.arrive(oid(1))
    assert order.state is OrderState.ON_SCENE and order.on_scene_at == clock.now()
    clock.advance(hours=2)
    order, _ = linkage.close(oid(1), Resolution.EXTINGUISHED, note="out by 12:40")
    assert order.state is OrderState.CLOSED and order.resolution is Resolution.EXTINGUISHED
    assert linkage.store.open_orders("team-A") == []
    assert [e.kind for e in linkage.store.log(oid(1))] == ["created", "ack", "arrive", "close"]
    assert [e.at for e in linkage.store.log(oid(1))][1:] == [
        T0.replace(minute=4),
        T0.replace(minute=34),
        T0.replace(hour=4, minute=34),
    ]


def test_invalid_transitions_are_refused_and_change_nothing(linkage: Linkage) -> None:
    linkage.consume([event()])
    linkage.close(oid(1), Resolution.FALSE_ALARM)  # close before ack: allowed, recorded
    log = linkage.store.log(oid(1))
    before = linkage.store.get(oid(1))
    assert before.acked_at is None and before.state is OrderState.CLOSED
    with pytest.raises(InvalidTransition, match="closed; it cannot be acknowledged"):
        linkage.ack(oid(1))
    with pytest.raises(InvalidTransition, match="cannot be reached"):
        linkage.arrive(oid(1))
    with pytest.raises(InvalidTransition, match="already closed as false_alarm, not extinguished"):
        linkage.close(oid(1), Resolution.EXTINGUISHED)
    assert not linkage.close(oid(1), Resolution.FALSE_ALARM)[1]  # the same close again: a no-op
    assert linkage.store.get(oid(1)) == before and linkage.store.log(oid(1)) == log
    with pytest.raises(OrderNotFound, match="ord-nope"):
        linkage.ack("ord-nope")
    with pytest.raises(DispatchError, match="needs an outcome"):
        linkage.store.transition(oid(1), Action.CLOSE, T0)


def test_a_team_acts_only_on_its_own_orders_and_the_answer_is_the_order_now(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, team="team-A")])
    before, log, feed = (
        linkage.store.get(oid(1)),
        linkage.store.log(oid(1)),
        redis_client.xlen(keys.FEED),
    )
    refusals = (
        lambda: linkage.ack(oid(1), by="team:team-B", team="team-B"),
        lambda: linkage.arrive(oid(1), by="team:team-B", team="team-B"),
        lambda: linkage.close(oid(1), Resolution.OTHER, team="team-B"),
        lambda: linkage.close(oid(1), Resolution.FALSE_ALARM, "known_heat_source", team="team-B"),
    )
    for refused in refusals:
        with pytest.raises(OrderForbidden, match=f"order {oid(1)} belongs to team team-A, not "):
            refused()
    assert linkage.store.get(oid(1)) == before and linkage.store.log(oid(1)) == log
    assert redis_client.xlen(keys.FEED) == feed and linkage.store.masks() == []
    with pytest.raises(OrderNotFound):
        linkage.ack("ord-nope", team="team-A")
    clock.advance(minutes=3)
    order, changed = linkage.ack(oid(1), by="team:team-A", team="team-A")
    assert changed and order == linkage.store.get(oid(1)) and order.acked_at == clock.now()
    order, changed = linkage.ack(oid(1), by="team:team-A", team="team-A")
    assert not changed and order == linkage.store.get(oid(1))
    closed, _ = linkage.close(oid(1), Resolution.FALSE_ALARM, "known_heat_source", team="team-A")
    assert closed == linkage.store.get(oid(1)) and closed.mask == f"false-alarm-{oid(1)}"
    assert oid(1).encode() not in redis_client.smembers(keys.team_open("team-A"))


def test_arriving_without_an_ack_acknowledges_on_arrival(
    linkage: Linkage, clock: FakeClock
) -> None:
    linkage.consume([event()])
    clock.advance(minutes=20)
    order, _ = linkage.arrive(oid(1))
    assert order.acked_at == order.on_scene_at == clock.now()
    assert [e.detail for e in linkage.store.log(oid(1))][1] == "acknowledged on arrival"


def test_unanswered_orders_escalate_up_the_chain_in_simulated_time(
    linkage: Linkage, clock: FakeClock, redis_client: redis.Redis
) -> None:
    linkage.consume([event(), event(n=2)])
    clock.advance(minutes=9)
    assert linkage.escalate() == []
    clock.advance(minutes=2)  # 11 min: past the 10-min SLA
    assert sorted(linkage.escalate()) == [(oid(1), "village:V1"), (oid(2), "village:V1")]
    linkage.ack(oid(2))  # answered: no more escalation
    steps = []
    for minute in range(12, 200):  # tick every minute up to 3 h 20 min after dispatch
        clock.set(T0 + timedelta(minutes=minute))
        steps += [(minute, *step) for step in linkage.escalate()]
    # up the chain every SLA (10 min); at the top, told again at 20, 40, 80 ... min (cap 4 h)
    assert steps == [
        (21, oid(1), "township:T1"),
        (31, oid(1), "district:D1"),
        (41, oid(1), "district:D1"),
        (61, oid(1), "district:D1"),
        (101, oid(1), "district:D1"),
        (181, oid(1), "district:D1"),
    ]
    order = linkage.store.get(oid(1))
    assert (order.escalations, order.level, order.responder) == (7, 3, "district:D1")
    assert order.sla_deadline == T0 + timedelta(minutes=181 + 160)
    assert len(_stream(redis_client, "district:D1")) == 5
    assert linkage.store.get(oid(2)).escalations == 1


def test_re_notification_at_the_top_is_capped(linkage: Linkage) -> None:
    sla = linkage.routing.sla[Severity.LOW]
    cap = linkage.routing.top_renotify_max
    intervals = [linkage.store.next_interval(Severity.LOW, n, 4) for n in range(12)]
    assert intervals[:5] == [sla, sla, sla, 2 * sla, 4 * sla]
    assert max(intervals) == cap == intervals[-1]


def test_an_incident_closed_by_the_engine_leaves_the_order_open(linkage: Linkage) -> None:
    linkage.consume([event()])
    counts = linkage.consume([event("closed", minutes=60 * 24)])
    assert counts.incident_closed == 1
    order = linkage.store.get(oid(1))
    assert order.state is OrderState.PENDING and order.incident_closed_at is not None
    assert linkage.store.log(oid(1))[-1].kind == "incident_closed"
    assert linkage.consume([event("updated", n=9, severity="high")]).unknown == 1


def test_team_inbox_reads_through_a_consumer_group(linkage: Linkage) -> None:
    linkage.consume([event(), event(n=2)])
    first = linkage.store.inbox("team:team-A", "phone-1")
    assert [n.fields["order"] for n in first] == [oid(1), oid(2)]
    assert linkage.store.ack_inbox("team:team-A", [n.id for n in first]) == 2
    assert linkage.store.inbox("team:team-A", "phone-1") == []  # handed over and acknowledged
    linkage.consume([event("updated", severity="high")])
    assert [n.fields["kind"] for n in linkage.store.inbox("team:team-A", "phone-2")] == ["severity"]


def test_a_cell_without_team_or_parents_goes_to_the_fallback(linkage: Linkage) -> None:
    linkage.consume([event(team=None, village=None, township=None, district=None)])
    order = linkage.store.get(oid(1))
    assert order.responder == "org:duty_office"
    assert linkage.report(by=[]).rows[0].dispatched == 0  # no team was dispatched


def test_routing_says_how_often_a_dispatcher_escalates(routing: RoutingRules) -> None:
    assert routing.escalate_every == timedelta(seconds=30)  # rules/routing.yaml
    fields = routing.model_dump(exclude={"escalate_every"})
    assert RoutingRules.model_validate(fields).escalate_every == timedelta(seconds=30)  # default
    assert RoutingRules.model_validate({**fields, "escalate_every": "2m"}).escalate_every == (
        timedelta(minutes=2)
    )
    with pytest.raises(ValidationError, match="escalate_every"):
        RoutingRules.model_validate({**fields, "escalate_every": 0})
