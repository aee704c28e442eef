"""The same seed and arguments give the same bytes, release after release.

The digests are those of the streams the simulator wrote before it was made faster (#11): the
faster code draws the same numbers and writes the same lines. A numpy, shapely or orjson upgrade
that changes a stream fails here first; say so in the release notes when updating a digest."""

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
    ({}, "14bbc319973e5215025b08bb79548ec2ecf8cde366fbd93cd97c42b8173f3e90"),  # the defaults
    (  # 40 fires in a day: most placed after a thousand tries or more
        {"seed": 4, "hours": 24, "sensors": 12, "fires": 40},
        "6ee573a9378898fb635c880f310203756520b0ad895963dbab3d29fd3d53b9fa",
    ),
    (  # no sensors: every fire placed near a cell
        {"seed": 6, "hours": 24, "sensors": 0, "cameras": 10, "fires": 10},
        "be31e8196d3973eba2598cbdebeffa43099cb432c8a4226420ea43406ed1fc8f",
    ),
    (  # no cameras
        {"seed": 5, "hours": 24, "sensors": 50, "cameras": 0, "fires": 10},
        "438575bace01f1ba36bfc6db5d0ce87b6071ccbe97f0479cf09bac90bc12f85a",
    ),
    (  # a window of odd length, one camera
        {"seed": 2, "hours": 7.3, "sensors": 33, "cameras": 1, "fires": 9},
        "1c6e08670da8158df3b824e9d715918eeee7734fa9abfc8aefc74cdae46efcaa",
    ),
]
DEMO_SEASON = "183f69b2a50b765751fc57981649f675b58d18a4d524d1172124acce244a4d44"


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
