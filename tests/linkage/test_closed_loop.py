"""A false-alarm closure at a known heat source becomes a mask the engine applies.

The close and its mask are one script: retried, repaired and removed masks below."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage import keys
from firewatch.linkage.consumer import MaskSync
from firewatch.linkage.model import Action, Resolution
from firewatch.linkage.server import RedisProcess
from firewatch.linkage.service import Linkage
from firewatch.model import DETECTIONS, EventKind
from firewatch.rules.model import RoutingRules

from ..engine.conftest import camera, place
from .conftest import event, oid


def test_false_alarm_at_a_heat_source_masks_the_place(
    linkage: Linkage, clock: FakeClock, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine()
    sync = MaskSync(linkage.store, engine)
    first = engine.process(DETECTIONS.validate_python([camera("cam", 0, 0.9)])) + engine.flush()
    assert [e.event for e in first] == [EventKind.OPENED]
    linkage.consume(first)
    order_id = "ord-" + first[0].incident_id.removeprefix("inc-")
    linkage.close(order_id, Resolution.FALSE_ALARM, cause="known_heat_source", note="brick kiln")
    (mask,) = linkage.store.masks()
    assert mask.circle is not None and mask.end is not None and mask.start is not None
    assert (mask.circle.lat, mask.circle.lon) == (first[0].lat, first[0].lon)
    assert mask.end - mask.start == linkage.routing.closed_loop.ttl
    assert sync.sync() and not sync.sync()  # applied once; nothing changed since

    p = place(east_km=0.1)  # 100 m from the kiln, two days later: suppressed
    later = camera("cam", 60 * 48, 0.95, east_km=0.1)
    events = engine.process(DETECTIONS.validate_python([later])) + engine.flush()
    assert [e.event for e in events] == [EventKind.CLOSED]  # the old incident, inactive: no new one
    assert engine.stats.suppressed_by[mask.name] == 1
    assert p["lat"] == later["lat"]

    linkage.remove_mask(mask.name)
    assert sync.sync() and mask.name not in {m.name for m in engine.masks}
    again = camera("cam", 60 * 49, 0.95, east_km=0.1)
    events = engine.process(DETECTIONS.validate_python([again])) + engine.flush()
    assert [e.event for e in events] == [EventKind.OPENED]


def test_other_closures_make_no_mask(linkage: Linkage, clock: FakeClock) -> None:
    linkage.consume([event(n=1), event(n=2)])
    linkage.close(oid(1), Resolution.FALSE_ALARM, cause="sensor_fault")
    linkage.close(oid(2), Resolution.EXTINGUISHED, cause="known_heat_source")
    assert linkage.store.masks() == []
    clock.advance(timedelta(minutes=1))


class LosesScriptReplies(redis.Redis):
    """A client whose next script call runs in Redis but whose reply is lost, as when the
    connection drops right after the server executed it: the caller sees ConnectionError."""

    lose_next = False

    def execute_command(self, *args: Any, **options: Any) -> Any:
        result = super().execute_command(*args, **options)
        if self.lose_next and args[0] in ("EVALSHA", "EVAL"):
            self.lose_next = False
            raise redis.ConnectionError("connection lost after the script ran (test)")
        return result


HEAT = "known_heat_source"
MASK = f"false-alarm-{oid(1)}"


def test_a_close_whose_reply_was_lost_makes_its_mask_once_on_retry(
    redis_session: RedisProcess, redis_client: redis.Redis, routing: RoutingRules, clock: FakeClock
) -> None:
    client = LosesScriptReplies(unix_socket_path=str(redis_session.socket))
    linkage = Linkage(client, routing, clock)
    linkage.consume([event()])
    clock.advance(minutes=40)
    closed_at = clock.now()
    client.lose_next = True
    with pytest.raises(redis.ConnectionError):
        linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT, note="kiln")
    clock.advance(minutes=1)
    order, changed = linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT, note="kiln")
    assert not changed  # the close and its mask were done by the first call
    (mask,) = linkage.store.masks()
    assert (mask.name, mask.start, order.mask, order.closed_at) == (
        MASK,
        closed_at,
        MASK,
        closed_at,
    )
    assert mask.end == closed_at + routing.closed_loop.ttl
    assert linkage.store.masks_version() == 1
    assert [e.kind for e in linkage.store.log(oid(1))] == ["created", "close", "mask"]
    client.close()


def test_a_close_that_lost_its_mask_gets_it_on_a_repeated_close(
    linkage: Linkage, clock: FakeClock
) -> None:
    linkage.consume([event()])
    clock.advance(minutes=40)
    closed_at = clock.now()
    # the old two-step close: the transition ran, the process died before writing the mask
    linkage.store.transition(oid(1), Action.CLOSE, closed_at, Resolution.FALSE_ALARM, HEAT)
    assert linkage.store.masks() == [] and linkage.store.get(oid(1)).mask is None
    clock.advance(hours=3)
    order, changed = linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT)
    assert changed and order.mask == MASK and order.closed_at == closed_at
    (mask,) = linkage.store.masks()
    assert (mask.name, mask.start) == (MASK, closed_at)  # from the close, not the repair
    assert linkage.store.masks_version() == 1
    last = linkage.store.log(oid(1))[-1]
    assert (last.kind, last.at) == ("mask", clock.now()) and "repeated close" in last.detail
    assert not linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT)[1]
    assert linkage.store.masks_version() == 1 and len(linkage.store.masks()) == 1


def test_a_mask_the_old_code_made_is_recorded_not_made_again(
    linkage: Linkage, redis_client: redis.Redis, clock: FakeClock
) -> None:
    linkage.consume([event()])
    linkage.store.transition(oid(1), Action.CLOSE, clock.now(), Resolution.FALSE_ALARM, HEAT)
    made = linkage.mask_for(linkage.store.get(oid(1)), clock.now())
    redis_client.hset(keys.MASKS, made.name, made.model_dump_json())  # the old second call
    redis_client.incr(keys.MASKS_VERSION)
    clock.advance(hours=1)
    order, changed = linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT)
    assert not changed and order.mask == MASK
    assert linkage.store.masks() == [made] and linkage.store.masks_version() == 1


def test_a_removed_mask_is_not_made_again_by_a_repeated_close(
    linkage: Linkage, clock: FakeClock
) -> None:
    linkage.consume([event()])
    linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT)
    assert [m.name for m in linkage.store.masks()] == [MASK]
    linkage.remove_mask(MASK)
    assert linkage.store.masks_version() == 2
    clock.advance(minutes=5)
    order, changed = linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT)
    assert not changed and order.mask == MASK  # still names the mask it made
    assert linkage.store.masks() == [] and linkage.store.masks_version() == 2


def test_a_repeated_close_with_another_cause_makes_no_mask(linkage: Linkage) -> None:
    linkage.consume([event()])
    linkage.close(oid(1), Resolution.FALSE_ALARM, cause="sensor_fault")
    order, changed = linkage.close(oid(1), Resolution.FALSE_ALARM, cause=HEAT)
    assert not changed and order.mask is None and order.cause == "sensor_fault"
    assert linkage.store.masks() == [] and linkage.store.masks_version() == 0
