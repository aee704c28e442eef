"""The same seed and arguments give the same bytes, release after release.

The digests are those of the streams the simulator wrote before it was made faster (#11): the
faster code draws the same numbers and writes the same lines; since cameras send bearings with an
error and every third tower its own position (#12, sim/records.py), only the camera lines'
bearing_deg, lat and lon differ from those (every other line, and the lines' order, checked
equal). A numpy, shapely or orjson upgrade that changes a stream fails here first; say so in the
release notes when updating a digest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from firewatch.sim.defaults import DEMO_DAYS, DEMO_FIRES, DEMO_SEED, DEMO_SENSORS
from firewatch.sim.season import write_season
from firewatch.simulate import write_stream

GRID = Path(__file__).resolve().parents[2] / "data" / "grids" / "qujiang.geojson"

STREAMS: list[tuple[dict[str, Any], str]] = [
    ({}, "6a1323a45675fc0c84f328249cbb1a8c0931e31dcb839a71073549e1f78547ed"),  # the defaults
    (  # 40 fires in a day: most placed after a thousand tries or more
        {"seed": 4, "hours": 24, "sensors": 12, "fires": 40},
        "8da7796f88abeb65115ae023f4fe33e3b800b7c2d27172594d79fd165d9c03c3",
    ),
    (  # no sensors: every fire placed near a cell
        {"seed": 6, "hours": 24, "sensors": 0, "cameras": 10, "fires": 10},
        "e4e9588ef76e00579f25bf36d9e88ae1094d283cefff36d37f9013fc870be3fa",
    ),
    (  # no cameras
        {"seed": 5, "hours": 24, "sensors": 50, "cameras": 0, "fires": 10},
        "438575bace01f1ba36bfc6db5d0ce87b6071ccbe97f0479cf09bac90bc12f85a",
    ),
    (  # a window of odd length, one camera
        {"seed": 2, "hours": 7.3, "sensors": 33, "cameras": 1, "fires": 9},
        "e4b95251d4cf76e16d0d85726a0939bed24e63f76d599e21806ed5c12502a263",
    ),
]
DEMO_SEASON = "0817bf0bfbba4b172fadecae45f7b77cb58d7a26dd357e3351e61624d5b9a854"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("options", "expected"), STREAMS)
def test_a_stream_is_the_bytes_it_always_was(
    options: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "stream.jsonl"
    write_stream(path, GRID, **options)
    assert digest(path) == expected


def test_the_demo_season_is_the_bytes_it_always_was(tmp_path: Path) -> None:
    path = tmp_path / "season.jsonl"
    episodes = write_season(
        path, GRID, seed=DEMO_SEED, days=DEMO_DAYS, fires=DEMO_FIRES, sensors=DEMO_SENSORS
    )
    assert sum(e.lines for e in episodes) == 59_712
    assert digest(path) == DEMO_SEASON
