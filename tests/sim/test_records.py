"""Camera and satellite records written many at a time: the same bytes as one at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from firewatch.sim.records import rounded
from firewatch.simulate import build_stream

GRID = Path(__file__).resolve().parents[2] / "data" / "grids" / "qujiang.geojson"


@pytest.mark.parametrize("places", [1, 2, 6])
def test_rounded_is_round_value_by_value_even_on_ties_and_odd_values(places: int) -> None:
    rng = np.random.default_rng(places)
    values = rng.uniform(-400, 400, 50_000)
    steps = np.round(values, places)
    halfway = steps + 0.5 * 10.0**-places  # the decimal ties, as near as floats get to them
    odd = [0.0, -0.0, -1e-9, 0.125, 2.675, 1.005, 1e17, np.nan, np.inf, -np.inf]
    values = np.concatenate([values, steps, halfway, odd])
    expected = [round(v, places) for v in values.tolist()]
    got = rounded(values, places)
    assert np.array_equal(np.array(got), np.array(expected), equal_nan=True)
    assert [np.signbit(v) for v in got] == [np.signbit(v) for v in expected]


def test_every_camera_and_satellite_line_is_orjson_of_its_record() -> None:
    """Each line, read back into a dict (keys in their order), is what orjson writes of it."""
    stream = build_stream(GRID, seed=3, hours=24, sensors=40, fires=12)
    specials = [
        line for line in stream.lines() if b'"source":"camera"' in line or b'"satellite"' in line
    ]
    assert len(specials) > 500
    for line in specials:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a malformed line
        assert orjson.dumps(record) == line
