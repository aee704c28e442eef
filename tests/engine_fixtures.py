"""Engine fixtures shared by every test package: a small 10 x 10 forest grid and an engine on it."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from firewatch.engine.core import Engine
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.rules import RuleSet, load_rules
from firewatch.rules.model import DeviceRules

ROOT = Path(__file__).resolve().parents[1]
LAT0, LON0 = 28.90, 118.80  # south-west corner of the test grid
STEP = 0.01  # cell size in degrees: about 1.1 km north-south, 0.97 km east-west


def write_grid(path: Path, rows: int = 10, cols: int = 10, west_east: bool = False) -> Path:
    """rows x cols cells of STEP degrees; one district `test`, or with `west_east` the columns
    below cols / 2 in district `west` and the others in `east`."""
    features = []
    for r in range(rows):
        for c in range(cols):
            x, y = LON0 + c * STEP, LAT0 + r * STEP
            ring = [[x, y], [x + STEP, y], [x + STEP, y + STEP], [x, y + STEP], [x, y]]
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "id": f"c{r}-{c}",
                        "name": f"cell {r}-{c}",
                        "team": f"team-{r // 5}-{c // 5}",
                        "village": f"v{r // 5}-{c // 5}",
                        "township": "t0",
                        "district": ("west" if c < cols // 2 else "east") if west_east else "test",
                        "risk": "high" if r >= 5 else "low",
                    },
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.fixture(scope="session")
def grid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_grid(tmp_path_factory.mktemp("grid") / "grid.geojson")


@pytest.fixture
def rules() -> RuleSet:
    """rules/ without its masks and device health: what incident tests judge (device health has
    its own tests, tests/engine/test_health.py, on the rules as shipped)."""
    return load_rules(ROOT / "rules").model_copy(update={"masks": [], "devices": DeviceRules()})


@pytest.fixture
def make_engine(grid_file: Path, rules: RuleSet) -> Callable[..., Engine]:
    def make(rule_set: RuleSet | None = None) -> Engine:
        grid = load_grid(grid_file)
        return Engine(grid, load_index(grid, None), rule_set or rules)

    return make


@contextmanager
def collections_seen() -> Iterator[list[int]]:
    """The generation of every garbage collection that starts inside the block, after a full
    collection beforehand (so that what the block's own objects do is what is seen)."""
    seen: list[int] = []

    def started(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()
    gc.callbacks.append(started)
    try:
        yield seen
    finally:
        gc.callbacks.remove(started)
