"""Detection builders for engine tests, in simulated event time (fixtures: engine_fixtures)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from firewatch.engine.core import Engine
from firewatch.model import DETECTIONS, IncidentEvent

T0 = datetime(2026, 4, 4, 2, 0, tzinfo=UTC)
KM_LAT = 1 / 110.574  # degrees of latitude per km
KM_LON = 1 / 97.42  # degrees of longitude per km at 28.95 N


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


def fire(seed: int, minutes: int = 300, far_at: float = 2000.0) -> list[dict[str, Any]]:
    """Sensors, cameras (some suspects) and satellites around one fire for `minutes`, then a
    camera 3 km away at minute `far_at` (late enough, it closes the fire's incidents)."""
    rng = random.Random(seed)
    records = []
    for m in range(0, minutes, 3):
        records.append(
            sensor(f"s{m % 4}", m, north_km=rng.uniform(-1, 1), east_km=rng.uniform(-1, 1))
        )
        if m % 9 == 0:
            records.append(camera("cam", m, rng.uniform(0.5, 0.95), east_km=rng.uniform(-3, 3)))
        if m % 60 == 0:
            records.append(
                satellite(m, rng.uniform(0.1, 0.9), scan=1.2, east_km=rng.uniform(-4, 4))
            )
    records.append(camera("far", far_at, 0.9, north_km=3))
    return records
