"""A false-alarm closure at a known heat source becomes a mask the engine applies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage.consumer import MaskSync
from firewatch.linkage.model import Resolution
from firewatch.linkage.service import Linkage
from firewatch.model import DETECTIONS, EventKind

from ..engine.conftest import camera, place


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
    from .conftest import event, oid

    linkage.consume([event(n=1), event(n=2)])
    linkage.close(oid(1), Resolution.FALSE_ALARM, cause="sensor_fault")
    linkage.close(oid(2), Resolution.EXTINGUISHED, cause="known_heat_source")
    assert linkage.store.masks() == []
    clock.advance(timedelta(minutes=1))
