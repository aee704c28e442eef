"""Incident events and a linkage queue on a real Redis, in simulated time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.linkage.service import Linkage
from firewatch.model import EventKind, IncidentEvent, Severity
from firewatch.rules import load_rules
from firewatch.rules.model import RoutingRules

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 4, 4, 2, 0, tzinfo=UTC)  # 10:00 in Qujiang (+08:00)


@pytest.fixture
def routing() -> RoutingRules:
    rules = load_rules(ROOT / "rules")
    assert rules.routing is not None
    return rules.routing


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def linkage(redis_client: redis.Redis, routing: RoutingRules, clock: FakeClock) -> Linkage:
    return Linkage(redis_client, routing, clock)


def event(
    kind: str = "opened",
    n: int = 1,
    severity: str = "low",
    minutes: float = 0,
    team: str | None = "team-A",
    seq: int = 0,
    **extra: Any,
) -> IncidentEvent:
    """Incident `n`'s event number `seq` (its event id), observed `minutes` after T0."""
    at = T0 + timedelta(minutes=minutes)
    fields: dict[str, Any] = {
        "event": EventKind(kind),
        "event_id": f"inc-{n:016x}/{seq}",
        "incident_id": f"inc-{n:016x}",
        "observed_at": at,
        "severity": Severity(severity),
        "grid_id": f"cell-{n}",
        "grid_name": f"cell {n}",
        "team": team,
        "village": "V1",
        "township": "T1",
        "district": "D1",
        "lat": 28.9 + n * 0.01,
        "lon": 118.9,
        "sources": {"sensor": 0, "camera": 1, "satellite": 0},
        "detections": 1,
        "first_seen": at,
        "last_seen": at,
        "rule": "camera.confident",
        "evidence": ["c1"],
    }
    fields.update(extra)
    return IncidentEvent(**fields)


def oid(n: int) -> str:
    return f"ord-{n:016x}"


Make = Callable[..., IncidentEvent]
