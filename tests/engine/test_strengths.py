"""Each record's fire-signal strength from the source rules (rules/detection.yaml: sensor
thresholds temperature_c 60 and co_ppm 50; camera 0.5 suspect, 0.8 strong; satellite 0.3), read
from the validated records in columns: a record's verdict depends on its own fields alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from firewatch.engine.core import Engine
from firewatch.engine.signals import Columns, Strength, strengths
from firewatch.ingest.validate import check_lines, validate_lines

from .conftest import T0, camera, satellite, sensor

NONE, SUSPECT, STRONG = 0, Strength.SUSPECT, Strength.STRONG


def verdicts(engine: Engine, records: list[dict[str, Any]]) -> list[int]:
    batch, _, rejects = validate_lines([json.dumps(r).encode() for r in records], "test")
    assert not rejects
    return [int(s) for s in strengths(batch, Columns.of(batch), engine.rules)]


def test_each_kind_at_and_around_its_thresholds(make_engine: Callable[[], Engine]) -> None:
    engine = make_engine()
    no_co = sensor("s2", 0, temp=61.0)
    del no_co["readings"]["co_ppm"]  # a threshold reading it does not send is not over it
    only_co = sensor("s3", 0, temp=20.0, co=50.0)
    del only_co["readings"]["temperature_c"]
    null_conf = {**sensor("s4", 0, temp=20.0), "confidence": None}
    records = [
        sensor("s0", 0, temp=59.9),
        sensor("s1", 0, temp=60.0),
        no_co,
        only_co,
        null_conf,
        camera("c0", 0, 0.49),
        camera("c1", 0, 0.5),
        camera("c2", 0, 0.8),
        satellite(0, 0.29),
        satellite(0, 0.3),
    ]
    expected = [NONE, SUSPECT, SUSPECT, SUSPECT, NONE, NONE, SUSPECT, STRONG, SUSPECT, STRONG]
    assert verdicts(engine, records) == expected


def test_a_verdict_does_not_depend_on_the_neighbours(make_engine: Callable[[], Engine]) -> None:
    engine = make_engine()
    records = [
        sensor("s1", 0, temp=70.0),
        camera("c1", 0, 0.9),
        sensor("s2", 0, temp=20.0),
        satellite(0, 0.1),
    ]
    together = verdicts(engine, records)
    assert together == [verdicts(engine, [r])[0] for r in records]
    assert verdicts(engine, records[::-1]) == together[::-1]


def test_event_times_given_must_be_one_a_detection() -> None:
    lines = [orjson.dumps(sensor("s1", 0, temp=20.0)), orjson.dumps(sensor("s2", 1, temp=20.0))]
    checked = check_lines(lines, "t", not_after=T0 + timedelta(days=1))
    assert checked.t is not None
    assert Columns.of(checked.detections, checked.t).t.tolist() == checked.t.tolist()
    assert Columns.of(checked.detections).t.tolist() == checked.t.tolist()  # the same, computed
    with pytest.raises(ValueError, match="1 event times for 2 detections"):
        Columns.of(checked.detections, checked.t[:1])
