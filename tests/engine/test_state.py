"""Engine snapshots: an engine restored from a snapshot goes on as if it had never stopped.

The situation is a Kafka worker that saves `engine.snapshot()` after each batch and restores it on
a fresh engine when its partition moves: for every cut point k, feeding the first k steps to one
engine, restoring its snapshot into another and feeding it the rest must give the events of one
uninterrupted engine, byte for byte, and end in the same state.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from firewatch.engine.core import Engine
from firewatch.engine.state import StateError, mask_delta, masks_from_delta
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.model import DETECTIONS, EventKind, IncidentEvent, Outcome
from firewatch.rules import RuleSet
from firewatch.rules.model import Mask
from tests.engine_fixtures import write_grid

from . import conftest
from . import test_spread as spread
from . import test_triangulation as triangulation
from .conftest import T0, camera, place, satellite, sensor

DAY = 24 * 60
Action = Callable[[Engine], list[IncidentEvent]]
Step = dict[str, Any] | Action  # a record, or something a worker does between batches
Factory = Callable[..., Engine]


@pytest.fixture
def new_engine(grid_file: Path, rules: RuleSet) -> Factory:
    """`make_engine`, with the grid and its index loaded once (hundreds of engines per test)."""
    grid = load_grid(grid_file)
    index = load_index(grid, None)

    def make(rule_set: RuleSet | None = None) -> Engine:
        return Engine(grid, index, rule_set or rules)

    return make


# -- feeding ----------------------------------------------------------------------------------
def feed(engine: Engine, steps: Sequence[Step], size: int = 1) -> list[IncidentEvent]:
    """Records in batches of `size` (an action ends a batch), without the final flush."""
    events: list[IncidentEvent] = []
    batch: list[dict[str, Any]] = []

    def process() -> None:
        nonlocal events, batch
        if batch:
            events += engine.process(DETECTIONS.validate_python(batch))
            batch = []

    for step in steps:
        if callable(step):
            process()
            events += step(engine)
        else:
            batch.append(step)
            if len(batch) == size:
                process()
    process()
    return events


def dump(events: list[IncidentEvent]) -> list[str]:
    return [e.model_dump_json() for e in events]


def check_every_cut(
    new_engine: Factory,
    steps: Sequence[Step],
    cuts: Sequence[int] | None = None,
    size: int = 1,
    rules: RuleSet | None = None,
) -> list[str]:
    """For each cut k: steps[:k] to engine A, snapshot, restore into B, steps[k:] to B, flush.
    Returns the uninterrupted events (for the caller to check the stream does what it says)."""
    expected: list[str] = []
    for k in range(len(steps) + 1) if cuts is None else cuts:
        whole = new_engine(rules)
        events = feed(whole, steps[:k], size) + feed(whole, steps[k:], size) + whole.flush()
        expected = dump(events)
        a = new_engine(rules)
        before = feed(a, steps[:k], size)
        data = a.snapshot()
        b = new_engine(rules)
        b.restore(data)
        assert b.snapshot() == data, f"cut {k}: snapshot -> restore -> snapshot differs"
        after = feed(b, steps[k:], size) + b.flush()
        assert dump(before + after) == expected, f"cut {k}: events differ"
        assert b.snapshot() == whole.snapshot(), f"cut {k}: end states differ"
        assert b.stats.as_dict() == whole.stats.as_dict()
    return expected


# -- streams ----------------------------------------------------------------------------------
def fire(seed: int, minutes: int = 120) -> list[dict[str, Any]]:
    """The shared fire stream, its far camera a day later: its event time closes the incidents."""
    return conftest.fire(seed, minutes, far_at=minutes + DAY + 200)


def minutes_of(record: dict[str, Any]) -> float:
    return (datetime.fromisoformat(record["observed_at"]) - T0).total_seconds() / 60


def kiln(name: str = "kiln", radius_m: float = 500, **where: float) -> Mask:
    return Mask.model_validate(
        {
            "name": name,
            "reason": "known_heat_source",
            "circle": {**place(**where), "radius_m": radius_m},
        }
    )


def add(mask: Mask) -> Action:
    def act(engine: Engine) -> list[IncidentEvent]:
        engine.add_mask(mask)
        return []

    return act


def remove(name: str) -> Action:
    def act(engine: Engine) -> list[IncidentEvent]:
        engine.remove_mask(name)
        return []

    return act


def tick(minutes: float) -> Action:
    """A live worker's clock tick (`Engine.advance`)."""
    return lambda engine: engine.advance(T0 + timedelta(minutes=minutes))


# -- equivalence ------------------------------------------------------------------------------
def test_a_fire_resumes_identically_at_every_cut(new_engine: Factory) -> None:
    expected = check_every_cut(new_engine, fire(1))
    kinds = [orjson.loads(e)["event"] for e in expected]
    assert kinds.count("opened") >= 2 and kinds.count("closed") >= 1  # closes across the cuts


def test_a_spreading_fire_resumes_identically_at_every_cut(new_engine: Factory) -> None:
    # the recent points it is followed by, its extent and its teams are in the snapshot
    records = spread.closing(spread.front(1.8, start=(-4.0, -4.0), heading_deg=45))
    expected = check_every_cut(new_engine, records, cuts=range(0, len(records) + 1, 3))
    teams = [orjson.loads(e)["teams"] for e in expected]
    assert max(map(len, teams)) >= 2  # it reached another team's cells


def test_a_snapshot_of_version_1_is_followed_from_its_first_detection(new_engine: Factory) -> None:
    engine = new_engine()
    feed(engine, [camera("a", 0, 0.9), sensor("s", 20, temp=20.0)])  # a is past the grace
    assert len(engine.tracker.open) == 1
    doc = orjson.loads(engine.snapshot())
    doc["v"] = 1
    for incident in doc["tracker"]["open"]:
        for key in ("recent", "extent", "teams"):
            del incident[key]
    restored = new_engine()
    restored.restore(orjson.dumps(doc))
    assert restored.snapshot() == engine.snapshot()  # as if taken by this version
    records = [camera("b", 25, 0.9, north_km=0.4), sensor("s", 60, temp=20.0)]
    assert feed(restored, records) == feed(engine, records) == []  # b joined a: nothing new
    assert [i.detections for i in restored.tracker.open.values()] == [2]


def test_the_longer_fire_resumes_identically_in_batches(new_engine: Factory) -> None:
    records = fire(2, minutes=300)
    check_every_cut(new_engine, records, cuts=range(0, len(records) + 1, 7), size=1)
    check_every_cut(new_engine, records, cuts=[0, 20, 50, 100, len(records)], size=20)


def test_duplicates_across_the_cut_change_nothing(new_engine: Factory) -> None:
    records = fire(3)
    doubled = [r for r in records for _ in (0, 1)] + records[:15]  # copies right after, and later
    check_every_cut(new_engine, doubled, cuts=range(0, len(doubled) + 1, 3))
    engine = new_engine()
    engine.restore(new_engine().snapshot())
    feed(engine, doubled)
    assert engine.stats.outcomes[Outcome.DUPLICATE] > 0


def test_out_of_order_within_grace_resumes_identically(new_engine: Factory) -> None:
    rng = random.Random(7)
    delayed = sorted(fire(4), key=lambda r: minutes_of(r) + rng.uniform(0, 9))
    expected = check_every_cut(new_engine, delayed)
    in_order = new_engine()
    assert expected == dump(
        feed(in_order, sorted(fire(4), key=minutes_of), 1000) + in_order.flush()
    )


def test_late_and_stale_records_across_the_cut(new_engine: Factory) -> None:
    steps = [
        camera("a", 0, 0.9),
        sensor("noise", 60, temp=20, east_km=5),  # watermark: 50 min
        camera("b", 30, 0.9, east_km=1),  # 20 min late: beyond grace, joins at once
        camera("c", 45, 0.9, north_km=-4),  # late, opens at once
        sensor("noise", 3 * DAY, temp=20, east_km=5),  # watermark: 3 days on; both close
        camera("d", 40, 0.9, north_km=4),  # older than watermark - 24 h: stale
        camera("e", 3 * DAY - 5, 0.9),  # within grace: buffered
        camera("f", 3 * DAY - 8, 0.9, east_km=0.5),  # earlier, within grace: opens, e joins it
    ]
    check_every_cut(new_engine, steps)
    engine = new_engine()
    feed(engine, steps)
    assert engine.stats.late == 2 and engine.stats.outcomes[Outcome.STALE] == 1


def test_suspects_waiting_for_corroboration_resume(new_engine: Factory) -> None:
    steps = [
        sensor("s1", 0),  # a suspect: waits
        camera("cam", 20, 0.6, east_km=1.0),  # another device within 2 km, 30 min: corroborated
        sensor("s2", 40, north_km=4),  # waits, and expires
        satellite(50, 0.2, scan=2.0, north_km=-4, east_km=-4),  # a low-confidence pixel: waits
        sensor("s3", 70, east_km=-4),  # waits...
        sensor("s3", 75, east_km=-4),  # ...the same sensor repeats within 10 min: opens
        camera("cam2", 78, 0.6, north_km=-3.5, east_km=-3.5),  # corroborates the pixel
        sensor("s4", 200, north_km=-2),  # waits until the end
    ]
    expected = check_every_cut(new_engine, steps)
    rules = [orjson.loads(e)["rule"] for e in expected]
    assert rules == ["camera.corroborated", "sensor.repeat", "camera.corroborated"]
    engine = new_engine()
    feed(engine, steps[:5])
    state = orjson.loads(engine.snapshot())
    assert [p[0] for p in state["tracker"]["pending"]] == ["s2@40", "sat@50@28.90883,118.81394"]
    assert [b[0] for b in state["buffer"]] == ["s3@70"]  # the watermark has not passed it yet
    feed(engine, steps[5:])
    engine.flush()
    assert engine.tracker.suspects_expired == 1 and engine.tracker.pending_suspects == 1


def test_inactivity_closes_across_the_cut_and_clock_ticks(new_engine: Factory) -> None:
    steps: list[Step] = [
        camera("a", 0, 0.9),
        camera("a", 60, 0.9),
        camera("b", 90, 0.9, north_km=4),
        tick(60 + DAY + 5),  # a quiet stream: the clock does not pass a's deadline yet
        tick(60 + DAY + 11),  # now it does: a closes; b is still open
        camera("b", 90 + DAY, 0.9, north_km=4),  # exactly at b's deadline: joins b
        camera("a", 100, 0.9),  # late but not stale: a has closed, so a new incident opens
        camera("c", 3 * DAY, 0.9, east_km=-4),  # closes the rest
    ]
    expected = [orjson.loads(e) for e in check_every_cut(new_engine, steps)]
    assert [(e["event"], e["evidence"][0]) for e in expected] == [
        ("opened", "a@0"),
        ("opened", "b@90"),
        ("closed", "a@0"),
        ("opened", "a@100"),
        ("closed", "a@100"),
        ("closed", "b@90"),
        ("opened", "c@4320"),
    ]


def test_runtime_masks_survive_a_restore(new_engine: Factory) -> None:
    steps: list[Step] = [
        add(kiln()),
        camera("cam1", 0, 0.9, east_km=0.45),  # inside the kiln: suppressed
        camera("cam1", 5, 0.9, east_km=0.55),  # outside: opens
        add(kiln("yard", radius_m=800, north_km=3)),
        camera("cam2", 10, 0.9, north_km=3.5),  # inside the yard
        remove("kiln"),
        camera("cam1", 20, 0.9, east_km=-3),  # no mask here yet: opens
        add(kiln("kiln", radius_m=300, east_km=-3)),  # the kiln again, elsewhere
        camera("cam1", 25, 0.9, east_km=-3),  # suppressed
        camera("cam1", 30, 0.9, north_km=3),  # the yard still suppresses
    ]
    check_every_cut(new_engine, steps)
    engine = new_engine()
    feed(engine, steps)
    assert engine.stats.suppressed_by == {"kiln": 2, "yard": 2}


def test_rule_masks_changed_at_run_time_keep_their_order(
    new_engine: Factory, rules: RuleSet
) -> None:
    # two overlapping rule masks: a detection inside both is credited to the first applied
    burn, plant = kiln("burn", radius_m=900), kiln("plant", radius_m=600, east_km=0.3)
    with_masks = rules.model_copy(update={"masks": [burn, plant]})
    steps: list[Step] = [
        camera("c", 0, 0.9, east_km=0.2),  # burn
        remove("burn"),
        camera("c", 5, 0.9, east_km=0.2),  # plant
        add(burn),  # burn again, now after plant
        camera("c", 10, 0.9, east_km=0.2),  # plant
        add(kiln("plant", radius_m=50, east_km=0.3)),  # plant shrinks, in place
        camera("c", 15, 0.9, east_km=0.2),  # burn
    ]
    check_every_cut(new_engine, steps, rules=with_masks)
    engine = new_engine(with_masks)
    feed(engine, steps)
    assert engine.stats.suppressed_by == {"burn": 2, "plant": 2}


def test_restart_after_every_batch(new_engine: Factory) -> None:
    """The worker's pattern: save after each batch; here every batch runs on a new engine."""
    rng = random.Random(11)
    records = sorted(fire(5, minutes=300), key=lambda r: minutes_of(r) + rng.uniform(0, 9))
    whole = new_engine()
    expected = dump(feed(whole, records, 9) + whole.flush())
    events: list[IncidentEvent] = []
    data = new_engine().snapshot()
    for i in range(0, len(records), 9):
        engine = new_engine()
        engine.restore(data)
        events += feed(engine, records[i : i + 9], 9)
        data = engine.snapshot()
    engine = new_engine()
    engine.restore(data)
    assert dump(events + engine.flush()) == expected
    assert engine.snapshot() == whole.snapshot()


def test_taking_a_snapshot_changes_nothing(new_engine: Factory) -> None:
    records = fire(6)
    whole, snapped = new_engine(), new_engine()
    expected = dump(feed(whole, records) + whole.flush())
    events = []
    for r in records:
        events += feed(snapped, [r])
        snapped.snapshot()
    assert dump(events + snapped.flush()) == expected


# -- what is in the state ---------------------------------------------------------------------
def test_stats_continue_after_a_restore(new_engine: Factory) -> None:
    a = new_engine()
    feed(a, [camera("a", 0, 0.9), sensor("n", 1, temp=20), camera("a", 0, 0.9)])
    b = new_engine()
    b.restore(a.snapshot())
    feed(b, [camera("a", 2, 0.9), satellite(3, 0.9, static=True)])
    stats = b.stats.as_dict()
    assert stats["records"] == 5
    assert stats["outcomes"]["incident"] == 2 and stats["outcomes"]["duplicate"] == 1
    assert stats["outcomes"]["ignored"] == 1 and stats["suppressed_by"] == {"static": 1}


def test_a_rules_deploy_applies_to_a_restored_engine(new_engine: Factory, rules: RuleSet) -> None:
    burn = kiln("burn", north_km=-3)
    old = new_engine(rules.model_copy(update={"masks": [burn]}))
    old.add_mask(kiln())
    assert old.remove_mask("burn")
    new_rules = rules.model_copy(update={"masks": [burn, kiln("plant", north_km=3)]})
    restored = new_engine(new_rules)
    restored.restore(old.snapshot())
    # the run-time change (kiln added, burn removed) carries over; the new rule mask applies
    assert [m.name for m in restored.masks] == ["plant", "kiln"]


def test_mask_delta_rebuilds_the_order_of_any_history() -> None:
    pool = [kiln(name, radius_m=r) for name in "abcde" for r in (100, 200)]
    rng = random.Random(3)
    for _ in range(300):
        rule_masks = {m.name: m for m in rng.sample(pool, 4)}  # names may repeat: dedup
        current = dict(rule_masks)
        for _ in range(rng.randint(0, 6)):
            m = rng.choice(pool)
            if rng.random() < 0.4:
                current.pop(m.name, None)
            else:
                current[m.name] = m
        runtime, removed = mask_delta(list(current.values()), list(rule_masks.values()))
        rebuilt = masks_from_delta(list(rule_masks.values()), runtime, removed)
        assert rebuilt == list(current.values())
        assert len(runtime) <= len(current)


def test_a_fresh_engine_has_a_small_snapshot(new_engine: Factory) -> None:
    data = new_engine().snapshot()
    doc = orjson.loads(data)
    assert doc["v"] == 5 and doc["max_t"] is None and doc["watermark"] is None  # -inf: none yet
    assert len(data) < 400, data


# -- errors -----------------------------------------------------------------------------------
def _edit(data: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = orjson.loads(data)
    change(doc)
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: b"", "not JSON"),
        (lambda d: d[: len(d) // 2], "not JSON"),
        (lambda d: b"[1, 2]", "no format version"),
        (lambda d: b'{"engine": {}}', "no format version"),
        (lambda d: _edit(d, lambda doc: doc.update(v=6)), "version 6 is unknown"),
        (lambda d: _edit(d, lambda doc: doc.update(v="1")), "version '1' is unknown"),
        (lambda d: _edit(d, lambda doc: doc.update(v=True)), "version True is unknown"),
        (lambda d: _edit(d, lambda doc: doc.pop("tracker")), "corrupt: tracker: Field required"),
        (lambda d: _edit(d, lambda doc: doc.update(extra=1)), "extra: Extra inputs"),
        (
            lambda d: _edit(d, lambda doc: doc["seen"][0].__setitem__(0, "noon")),
            "corrupt: seen.0.0: Input should be a valid number",
        ),
        (
            lambda d: _edit(
                d, lambda doc: doc["tracker"]["open"][0]["anchor"].__setitem__(4, "drone")
            ),
            "tracker.open.0.anchor.4: Input should be 'sensor', 'camera' or 'satellite'",
        ),
        (
            lambda d: _edit(d, lambda doc: doc["tracker"]["open"][0]["anchor"].__setitem__(7, 100)),
            "cell 100 is not in the grid",
        ),
        (
            lambda d: _edit(
                d, lambda doc: doc["tracker"]["open"][0]["recent"][0].__setitem__(4, -1)
            ),
            "recent: a cell not in the grid",
        ),
        (
            lambda d: _edit(d, lambda doc: doc["tracker"]["open"][0].__setitem__("extent", [1.0])),
            "tracker.open.0.extent",
        ),
        (
            lambda d: _edit(
                d, lambda doc: doc["tracker"]["open"].append(doc["tracker"]["open"][0])
            ),
            "lists an incident twice",
        ),
        (
            lambda d: _edit(d, lambda doc: doc.update(cells="100-0000000000000000")),
            "taken on another grid",
        ),
        (
            lambda d: _edit(
                d,
                lambda doc: doc["masks"].append(
                    {"name": "odd", "reason": "other", "geometry": {"type": "Nope"}}
                ),
            ),
            "mask 'odd' has no usable shape",
        ),
    ],
)
def test_a_bad_snapshot_is_refused_and_changes_nothing(
    new_engine: Factory, change: Callable[[bytes], bytes], message: str
) -> None:
    a = new_engine()
    feed(a, [camera("a", 0, 0.9), sensor("s", 1, north_km=4), camera("b", 30, 0.9)])
    b = new_engine()
    feed(b, [camera("x", 0, 0.9, east_km=-4)])
    before = b.snapshot()
    with pytest.raises(StateError, match=message.replace("(", r"\(")):
        b.restore(change(a.snapshot()))
    assert b.snapshot() == before


def test_a_snapshot_from_another_grid_is_refused(
    new_engine: Factory, rules: RuleSet, tmp_path: Path
) -> None:
    grid = load_grid(write_grid(tmp_path / "small.geojson", rows=5, cols=5))
    other = Engine(grid, load_index(grid, None), rules)
    with pytest.raises(StateError, match="taken on another grid"):
        other.restore(new_engine().snapshot())


# -- size -------------------------------------------------------------------------------------
def test_snapshot_of_200_open_incidents_is_modest(new_engine: Factory, rules: RuleSet) -> None:
    # 200 sites 600 m apart (merge radius 200 m), 25 camera detections each over two hours,
    # ids from the content hash (`h-` + 24 hex digits), as for producers that send no id
    small = rules.model_copy(
        update={"incidents": rules.incidents.model_copy(update={"merge_radius_km": 0.2})}
    )
    records = []
    for m in range(0, 125, 5):
        for i in range(200):
            r = camera(
                f"cam{i}", m, 0.9, north_km=-4.5 + (i // 15) * 0.6, east_km=-4.5 + (i % 15) * 0.6
            )
            del r["id"]
            records.append(r)
    engine = new_engine(small)
    events = feed(engine, records, 1000)
    assert [e.event for e in events].count(EventKind.OPENED) == len(engine.tracker.open) == 200
    data = engine.snapshot()
    doc = orjson.loads(data)
    incidents = len(orjson.dumps(doc["tracker"]["open"]))
    seen = len(orjson.dumps(doc["seen"]))
    report = (
        f"{len(data):,} bytes: {incidents:,} for 200 open incidents (20 evidence ids each), "
        f"{seen:,} for {len(doc['seen']):,} seen ids"
    )
    # measured: 600,183 bytes: 332,568 for the incidents (1,663 each, of which about 700 for the
    # 10 recent points each follows the fire by, 948 before), 220,001 for the 5,000 seen ids (44
    # each), the rest for the 400 signals of the last 10 minutes, still in the buffer
    assert incidents < 1_800 * 200, report
    assert len(data) < 650_000, report


def test_a_fire_placed_by_its_cameras_resumes_identically_at_every_cut(
    new_engine: Factory,
) -> None:
    # the camera signals' sights (buffered, pending, in the window) and each incident's place
    # are in the snapshot
    records = triangulation.watched(hours=1.0)
    expected = check_every_cut(new_engine, records, cuts=range(0, len(records) + 1, 2))
    placed = {orjson.loads(e)["located_by"] for e in expected}
    assert {"triangulated", "line_of_sight"} <= placed


def test_a_snapshot_of_version_2_is_read_as_placed_where_its_records_said(
    new_engine: Factory,
) -> None:
    engine = new_engine()
    feed(engine, [camera("a", 0, 0.9), sensor("s", 20, temp=20.0), camera("b", 21, 0.9)])
    doc = orjson.loads(engine.snapshot())
    assert doc["buffer"] and doc["tracker"]["open"]
    doc["v"] = 2
    for row in [*doc["buffer"], *(i["anchor"] for i in doc["tracker"]["open"])]:
        del row[11:]  # a version 2 row: 11 fields
    for incident in doc["tracker"]["open"]:
        del incident["place"]
    del doc["tracker"]["sights"]
    restored = new_engine()
    restored.restore(orjson.dumps(doc))
    assert restored.snapshot() == engine.snapshot()  # as if taken by this version
    records = [camera("c", 25, 0.9, north_km=0.4), sensor("s", 60, temp=20.0)]
    assert feed(restored, records) == feed(engine, records)


def test_unsure_cameras_crossing_resume_identically_at_every_cut(new_engine: Factory) -> None:
    # a pending suspect's sight, restored, still corroborates the crossing that uses it
    expected = check_every_cut(new_engine, triangulation.suspects_crossing())
    assert [orjson.loads(e)["rule"] for e in expected][:1] == ["camera.corroborated"]
