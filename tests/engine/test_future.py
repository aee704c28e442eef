"""Event time from a clock far ahead: rejected on arrival, and repaired in saved state.

The situation: one device's clock says 2099. Without a bound its one record moves the
watermark to 2099, which closes every open incident and makes every later fire signal stale.
`process_lines(..., now=)` rejects it (future_timestamp); `limit_time` repairs the state of an
engine that took such a record before the bound existed (a snapshot of an earlier version).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from firewatch.engine.core import Engine
from firewatch.engine.incidents import incident_id
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.model import DETECTIONS, EventKind, IncidentEvent, Outcome, RejectReason
from firewatch.rules import RuleSet

from ..engine_fixtures import collections_seen
from .conftest import T0, camera, fire, run, sensor

Factory = Callable[[], Engine]
YEAR_2099 = "2099-01-01T00:00:00+00:00"
AFTER_THE_STREAM = T0 + timedelta(days=3)  # the fire stream ends 2000 minutes after T0


@pytest.fixture
def new_engine(grid_file: Path, rules: RuleSet) -> Factory:
    grid = load_grid(grid_file)
    index = load_index(grid, None)
    return lambda: Engine(grid, index, rules)


def ahead(record: dict[str, Any], observed_at: str = YEAR_2099) -> dict[str, Any]:
    """The record as a device whose clock is wrong sends it."""
    return record | {"id": f"{record['id']}@{observed_at}", "observed_at": observed_at}


def with_record(records: list[dict[str, Any]], extra: dict[str, Any]) -> list[dict[str, Any]]:
    """`extra` inserted a third of the way through."""
    third = len(records) // 3
    return [*records[:third], extra, *records[third:]]


def lines_run(
    engine: Engine, records: Sequence[dict[str, Any]], now: datetime | None, batch: int = 20
) -> list[IncidentEvent]:
    """JSON lines through process_lines in batches, as a worker feeds it, then a flush."""
    events: list[IncidentEvent] = []
    for i in range(0, len(records), batch):
        lines = [orjson.dumps(r) for r in records[i : i + batch]]
        events += engine.process_lines(lines, "test", first_line=i + 1, now=now).events
    return events + engine.flush()


def dump(events: list[IncidentEvent]) -> list[str]:
    return [e.model_dump_json() for e in events]


def opened(events: list[IncidentEvent]) -> int:
    return sum(e.event is EventKind.OPENED for e in events)


# -- on arrival ---------------------------------------------------------------------------------
def test_one_ordinary_reading_from_2099_is_rejected_and_changes_nothing(
    new_engine: Factory,
) -> None:
    records = fire(1)
    broken = ahead(sensor("broken-clock", 0, temp=20.0, east_km=3))  # an ordinary reading
    expected = dump(lines_run(new_engine(), records, now=AFTER_THE_STREAM))
    assert opened([IncidentEvent.model_validate_json(e) for e in expected]) >= 2

    engine = new_engine()
    third = len(records) // 3
    first = engine.process_lines(
        [orjson.dumps(r) for r in records[:third]], "test", now=AFTER_THE_STREAM
    ).events
    out = engine.process_lines(
        [orjson.dumps(r) for r in [broken, *records[third:]]],
        "test",
        first_line=third + 1,
        now=AFTER_THE_STREAM,
    )
    events = first + out.events + engine.flush()

    assert dump(events) == expected
    (reject,) = out.rejects
    assert (reject.reason, reject.field, reject.line) == (
        RejectReason.FUTURE_TIMESTAMP,
        "observed_at",
        third + 1,
    )
    assert YEAR_2099 in reject.message
    assert engine.not_after(AFTER_THE_STREAM).isoformat() in reject.message
    assert engine.stats.rejected == {"future_timestamp": 1}
    assert engine.stats.outcomes[Outcome.STALE] == 0


def test_without_now_the_same_record_silences_the_rest_of_the_stream(
    new_engine: Factory,
) -> None:
    """The failure the bound prevents (and what makes the test above meaningful)."""
    records = fire(1)
    broken = ahead(sensor("broken-clock", 0, temp=20.0, east_km=3))
    engine = new_engine()
    events = lines_run(engine, with_record(records, broken), now=None)
    assert opened(events) < opened(lines_run(new_engine(), records, now=None))
    assert engine.stats.outcomes[Outcome.STALE] > 0


def test_now_plus_max_future_is_the_latest_time_accepted(new_engine: Factory) -> None:
    engine = new_engine()
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert engine.not_after(now) == now + timedelta(minutes=5)  # rules/detection.yaml
    at_bound = camera("a", 0, 0.9) | {"observed_at": "2026-11-28T12:05:00+00:00"}
    beyond = camera("b", 0, 0.9) | {"observed_at": "2026-11-28T20:05:01+08:00"}
    out = engine.process_lines([orjson.dumps(at_bound), orjson.dumps(beyond)], "edge", now=now)
    assert [(r.line, r.reason) for r in out.rejects] == [(2, RejectReason.FUTURE_TIMESTAMP)]
    assert engine.stats.records == 2 and engine.stats.outcomes[Outcome.INCIDENT] == 1


# -- in saved state -----------------------------------------------------------------------------
def snapshot_and_restore(engine: Engine, new_engine: Factory) -> Engine:
    restored = new_engine()
    restored.restore(engine.snapshot())
    return restored


def test_a_restored_jump_into_2099_is_repaired(new_engine: Factory) -> None:
    """An engine of an earlier version took records from 2099 (an ordinary reading, a strong
    camera hit and a suspect sensor reading: the last two wait in the grace buffer); its
    snapshot is restored and repaired: the stream after it gives what it gives a new engine."""
    records = fire(4)
    old = new_engine()
    old.process(
        DETECTIONS.validate_python(
            [
                ahead(sensor("broken-1", 0, temp=20.0)),
                ahead(camera("broken-2", 0, 0.9, north_km=3), "2099-01-01T00:00:01+00:00"),
                ahead(sensor("broken-3", 0, east_km=-3)),
            ]
        )
    )
    engine = snapshot_and_restore(old, new_engine)

    repaired = engine.limit_time(T0)  # a worker's clock + max_future, as the stream begins

    assert repaired is not None
    assert "latest event time 2099-01-01T00:00:01+00:00 -> 2026-04-04T02:00:00+00:00" in repaired
    assert "watermark 2098-12-31T23:50:01+00:00 -> 2026-04-04T01:50:00+00:00" in repaired
    assert "2 buffered fire signals dropped" in repaired
    assert "2 remembered detection ids dropped" in repaired
    assert engine.limit_time(T0) is None  # nothing left to repair
    expected = run(new_engine(), records)
    assert opened(expected) >= 2
    assert dump(run(engine, records)) == dump(expected)

    unrepaired = snapshot_and_restore(old, new_engine)
    events = run(unrepaired, records)  # without the repair: every fire signal of it is stale
    assert [e.observed_at.year for e in events if e.event is EventKind.OPENED] == [2099]
    assert unrepaired.stats.outcomes[Outcome.STALE] > 0


def test_a_watermark_moved_into_2099_alone_is_repaired(new_engine: Factory) -> None:
    """A worker's watermark comes from progress markers: one from 2099 moves it (`advance`)
    without any record of this engine being from 2099."""
    records = fire(4)
    old = new_engine()
    old.advance(datetime(2099, 1, 1, tzinfo=UTC))
    engine = snapshot_and_restore(old, new_engine)

    repaired = engine.limit_time(T0)

    assert repaired == "watermark 2098-12-31T23:50:00+00:00 -> 2026-04-04T01:50:00+00:00"
    assert dump(run(engine, records)) == dump(run(new_engine(), records))


def test_incidents_and_suspects_from_after_the_limit_are_dropped(new_engine: Factory) -> None:
    """After an idle release (a flush), 2099 records reach the tracker: an incident opened in
    2099 and a pending suspect. The repair forgets both (the incident's order stays open for
    its team) and the stream after it is processed as on a new engine."""
    records = fire(4)
    old = new_engine()
    strong = ahead(camera("broken-2", 0, 0.9, north_km=3))
    suspect = ahead(sensor("broken-3", 0, east_km=-3), "2099-01-01T00:00:01+00:00")
    (opened_2099,) = run(old, [strong, suspect])
    assert opened_2099.observed_at.year == 2099
    assert old.tracker.pending_suspects == 1
    engine = snapshot_and_restore(old, new_engine)

    repaired = engine.limit_time(T0)

    assert repaired is not None
    assert f"incident {opened_2099.incident_id} (first detection after the limit) dropped" in (
        repaired
    )
    assert "1 pending suspects dropped" in repaired
    assert engine.tracker.open == {} and engine.tracker.pending_suspects == 0
    assert dump(run(engine, records)) == dump(run(new_engine(), records))


def test_an_incident_joined_from_ahead_closes_from_the_limit(new_engine: Factory) -> None:
    """A camera whose clock is 6 h ahead joins an incident; flushed, restored, repaired with
    the limit 1 h after the incident began, the incident closes 24 h after the limit."""
    old = new_engine()
    run(old, [camera("a", 0, 0.9), camera("a-ahead", 6 * 60, 0.9, east_km=0.5)])
    engine = snapshot_and_restore(old, new_engine)
    limit = T0 + timedelta(hours=1)

    repaired = engine.limit_time(limit)

    assert repaired is not None
    assert f"incident {incident_id('a@0')}: last detection pulled back to the limit" in repaired
    # followed from its detections up to the limit only: the one ahead is not a place it burns
    (incident,) = engine.tracker.open.values()
    assert [p.t for p in incident.recent] == [T0.timestamp()]
    assert engine.advance(limit + timedelta(hours=24, minutes=10)) == []
    (closed,) = engine.advance(limit + timedelta(hours=24, minutes=11))
    assert closed.event is EventKind.CLOSED and closed.observed_at == limit + timedelta(hours=24)
    assert closed.detections == 2


def test_state_within_the_limit_needs_no_repair(new_engine: Factory) -> None:
    assert new_engine().limit_time(T0) is None
    engine = new_engine()
    records = fire(2)
    run(engine, records)  # ends with a flush: the watermark is the last event time
    last = max(datetime.fromisoformat(r["observed_at"]) for r in records)
    before = engine.snapshot()
    assert engine.limit_time(last) is None
    assert engine.limit_time(engine.not_after(last)) is None
    assert engine.snapshot() == before


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_a_device_days_behind_is_stale_even_before_there_is_a_watermark(
    new_engine: Factory, batch: int
) -> None:
    """A camera whose clock is a week behind, its record among the first that arrive (a replay's
    first batch, a worker still waiting for every partition's progress): counted stale, opens
    nothing, whatever the batch boundaries."""
    records = fire(1)
    behind = {**camera("cam-behind", -7 * 24 * 60, 0.95), "id": "behind"}  # at the fire
    honest = run(new_engine(), records)
    engine = new_engine()
    events = run(engine, [*records[:3], behind, *records[3:]], batch=batch)
    assert events == honest
    assert engine.stats.outcomes[Outcome.STALE] == 1


def test_a_batch_of_lines_is_processed_without_a_collection_on_the_way(new_engine: Factory) -> None:
    # Validation makes a dict per record (two for a sensor's readings); were the collector to
    # wake between validation and the events, each collection would walk all of them. The batch
    # holds it paused from its first line to its events, and leaves it as it found it.
    records = [sensor(f"s{i % 50}", i / 10, temp=20.0) for i in range(3000)] + fire(3)
    lines = [orjson.dumps(r) for r in records]
    engine = new_engine()

    with collections_seen() as collections:
        output = engine.process_lines(lines, "gc", now=AFTER_THE_STREAM)

    assert collections == []
    assert gc.isenabled()
    assert output.rejects == [] and engine.stats.records == len(records)
    assert any(isinstance(e, IncidentEvent) for e in output.events)  # it did the whole work
