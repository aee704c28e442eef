"""A small forest grid and detection builders for engine tests, in simulated event time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firewatch.engine.core import Engine
from firewatch.geo.grid import load_grid
from firewatch.geo.index import load_index
from firewatch.model import DETECTIONS, IncidentEvent
from firewatch.rules import RuleSet, load_rules

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 4, 4, 2, 0, tzinfo=UTC)
LAT0, LON0 = 28.90, 118.80  # south-west corner of the test grid
STEP = 0.01  # cell size in degrees: about 1.1 km north-south, 0.97 km east-west
KM_LAT = 1 / 110.574  # degrees of latitude per km
KM_LON = 1 / 97.42  # degrees of longitude per km at 28.95 N


def write_grid(path: Path, rows: int = 10, cols: int = 10) -> Path:
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
                        "district": "test",
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
    return load_rules(ROOT / "rules").model_copy(update={"masks": []})


@pytest.fixture
def make_engine(grid_file: Path, rules: RuleSet) -> Callable[..., Engine]:
    def make(rule_set: RuleSet | None = None) -> Engine:
        grid = load_grid(grid_file)
        return Engine(grid, load_index(grid, None), rule_set or rules)

    return make


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def place(north_km: float = 0.0, east_km: float = 0.0) -> dict[str, float]:
    """A point km north and east of (28.945, 118.855): the middle of cell c4-5 (low risk)."""
    return {"lat": 28.945 + north_km * KM_LAT, "lon": 118.855 + east_km * KM_LON}


def sensor(
    dev: str, minutes: float, temp: float = 70.0, co: float = 5.0, **where: float
) -> dict[str, Any]:
    return {
        "id": f"{dev}@{minutes}",
        "source": "sensor",
        "device_id": dev,
        "observed_at": at(minutes),
        **place(**where),
        "readings": {"temperature_c": temp, "co_ppm": co, "humidity_pct": 20},
    }


def camera(
    dev: str, minutes: float, conf: float, label: str = "smoke", **where: float
) -> dict[str, Any]:
    return {
        "id": f"{dev}@{minutes}",
        "source": "camera",
        "device_id": dev,
        "observed_at": at(minutes),
        **place(**where),
        "confidence": conf,
        "label": label,
    }


def satellite(
    minutes: float,
    conf: float,
    scan: float = 1.0,
    frp: float = 10.0,
    static: bool = False,
    **where: float,
) -> dict[str, Any]:
    p = place(**where)
    return {
        "id": f"sat@{minutes}@{p['lat']:.5f},{p['lon']:.5f}",
        "source": "satellite",
        "device_id": "Terra-MODIS",
        "observed_at": at(minutes),
        **p,
        "confidence": conf,
        "frp_mw": frp,
        "scan_km": scan,
        "track_km": scan,
        "static": static,
    }


def run(
    engine: Engine, records: Iterable[dict[str, Any]], batch: int = 1000
) -> list[IncidentEvent]:
    """Feed records in the given (arrival) order, then flush, as a replay does."""
    records = list(records)
    events: list[IncidentEvent] = []
    for i in range(0, len(records), batch):
        events += engine.process(DETECTIONS.validate_python(records[i : i + batch]))
    return events + engine.flush()


def kinds(events: list[IncidentEvent]) -> list[tuple[str, str]]:
    return [(e.event.value, e.rule) for e in events]
