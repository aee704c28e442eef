"""Table-driven: which detections open an incident, by which rule, and which do not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from firewatch.engine.core import Engine
from firewatch.model import Outcome
from firewatch.rules import Mask, RuleSet

from .conftest import at, camera, kinds, place, run, satellite, sensor

OPENED = "opened"
CASES: list[tuple[str, list[dict[str, Any]], list[tuple[str, str]]]] = [
    ("camera >= 0.8 opens alone", [camera("cam1", 0, 0.85)], [(OPENED, "camera.confident")]),
    ("camera exactly 0.8 opens", [camera("cam1", 0, 0.8)], [(OPENED, "camera.confident")]),
    ("camera suspect alone opens nothing", [camera("cam1", 0, 0.6)], []),
    ("camera below 0.5 is ignored", [camera("cam1", 0, 0.45), camera("cam1", 2, 0.45)], []),
    (
        "same camera suspect twice within 10 min opens",
        [camera("cam1", 0, 0.6), camera("cam1", 9, 0.7)],
        [(OPENED, "camera.repeat")],
    ),
    (
        "same camera suspect twice 11 min apart opens nothing",
        [camera("cam1", 0, 0.6), camera("cam1", 11, 0.7)],
        [],
    ),
    (
        "camera suspect corroborated by a sensor within 2 km in 30 min",
        [camera("cam1", 0, 0.6), sensor("s1", 25, east_km=1.5)],
        [(OPENED, "sensor.corroborated")],
    ),
    (
        "camera suspect and a sensor 3 km away: no",
        [camera("cam1", 0, 0.6), sensor("s1", 5, east_km=3.0)],
        [],
    ),
    (
        "camera suspect and a sensor 31 min later: no",
        [camera("cam1", 0, 0.6), sensor("s1", 31, east_km=0.5)],
        [],
    ),
    ("one sensor spike opens nothing", [sensor("s1", 0), sensor("s1", 10, temp=25)], []),
    (
        "second over-threshold reading of the same sensor within 10 min opens",
        [sensor("s1", 0), sensor("s1", 10, temp=20, co=55)],
        [(OPENED, "sensor.repeat")],
    ),
    ("sensor readings 11 min apart: no", [sensor("s1", 0), sensor("s1", 11)], []),
    (
        "two sensors over threshold near each other corroborate",
        [sensor("s1", 0), sensor("s2", 12, north_km=1.0)],
        [(OPENED, "sensor.corroborated")],
    ),
    ("sensor under every threshold: nothing", [sensor("s1", 0, temp=59.9, co=49.9)] * 1, []),
    ("satellite >= 0.3 opens", [satellite(0, 0.3)], [(OPENED, "satellite.confident")]),
    ("satellite below 0.3 is a suspect", [satellite(0, 0.29)], []),
    (
        "low satellite hotspot corroborated by a camera suspect",
        [satellite(0, 0.2), camera("cam1", 20, 0.55, north_km=0.5)],
        [(OPENED, "camera.corroborated")],
    ),
    ("static satellite detection is suppressed", [satellite(0, 0.9, static=True)], []),
    (
        "a suspect joins an open incident instead of waiting",
        [camera("cam1", 0, 0.9), camera("cam2", 5, 0.6, east_km=1.0)],
        [(OPENED, "camera.confident")],
    ),
]


@pytest.mark.parametrize(("case", "records", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decision(
    make_engine: Callable[..., Engine],
    case: str,
    records: list[dict[str, Any]],
    expected: list[tuple[str, str]],
) -> None:
    events = run(make_engine(), records)
    assert kinds([e for e in events if e.event.value == OPENED]) == expected, case


def test_outcomes_count_every_record_once(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    records = [
        camera("cam1", 0, 0.45),  # ignored
        camera("cam1", 1, 0.6),  # suspect
        camera("cam2", 2, 0.95),  # strong
        satellite(3, 0.9, static=True),  # suppressed
        sensor("s1", 4, temp=20),  # ignored
        {**sensor("s2", 5), "lat": 10.0},  # outside the grid
    ]
    run(engine, [*records, records[2]])  # the strong camera hit twice: a duplicate
    o = engine.stats.outcomes
    assert o[Outcome.IGNORED] == 2
    assert o[Outcome.SUSPECT] == 1
    assert o[Outcome.INCIDENT] == 1
    assert o[Outcome.SUPPRESSED] == 1
    assert o[Outcome.OUTSIDE] == 1
    assert o[Outcome.DUPLICATE] == 1
    assert sum(o.values()) == engine.stats.records == len(records) + 1
    assert engine.stats.suppressed_by == {"static": 1}


def _mask(**fields: Any) -> Mask:
    return Mask.model_validate({"name": "m", "reason": "controlled_burn", **fields})


def test_masks_suppress_inside_their_shape_window_and_sources(
    make_engine: Callable[..., Engine], rules: RuleSet
) -> None:
    p = place()
    square = [
        (p["lon"] - 0.005, p["lat"] - 0.005),
        (p["lon"] + 0.005, p["lat"] - 0.005),
        (p["lon"] + 0.005, p["lat"] + 0.005),
        (p["lon"] - 0.005, p["lat"] + 0.005),
    ]
    burn = _mask(polygon=square, start=at(0), end=at(60), sources=["camera"])
    engine = make_engine(rules.model_copy(update={"masks": [burn]}))
    events = run(
        engine,
        [
            camera("cam1", 10, 0.9),  # inside, in the window: suppressed
            camera("cam1", 61, 0.9, east_km=3),  # after the window, elsewhere: opens
            satellite(20, 0.9, north_km=0.1),  # inside, but the mask is for cameras only: opens
        ],
    )
    assert engine.stats.suppressed_by == {"m": 1}
    assert engine.stats.outcomes[Outcome.SUPPRESSED] == 1
    assert [e.rule for e in events if e.event.value == OPENED] == [
        "satellite.confident",
        "camera.confident",
    ]


def test_circle_mask_added_and_removed_at_run_time(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    p = place()
    engine.add_mask(_mask(name="kiln", reason="known_heat_source", circle={**p, "radius_m": 500}))
    assert [m.name for m in engine.masks] == ["kiln"]
    assert run(engine, [sensor("s-at-kiln", 0, temp=24)]) == []  # a normal reading at the kiln:
    assert engine.stats.suppressed_by == {}  # no fire signal, so nothing was suppressed
    assert engine.stats.outcomes[Outcome.IGNORED] == 1
    assert run(engine, [camera("cam1", 0, 0.9, east_km=0.45)]) == []  # 450 m from the centre
    assert engine.stats.suppressed_by == {"kiln": 1}
    assert len(run(engine, [camera("cam1", 5, 0.9, east_km=0.55)])) == 1  # 550 m: outside
    assert engine.remove_mask("kiln") and not engine.remove_mask("kiln")
    assert len(run(engine, [camera("cam2", 10, 0.9, north_km=-3)])) == 1
