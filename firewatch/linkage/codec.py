"""Orders and notifications as Redis fields: what the CREATE script writes, what `get` reads back.

Times are epoch seconds (3 decimals) as strings; an absent or empty field is None. Fields added
later (`detected_at`, `mask`) are optional, so orders written before them still read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from firewatch.linkage.model import Order, OrderState, Resolution
from firewatch.model import DeviceEvent, IncidentEvent, Severity


def epoch(at: datetime) -> str:
    return repr(round(at.timestamp(), 3))


def from_epoch(value: bytes | None) -> datetime | None:
    return at(value) if value else None


def at(value: bytes) -> datetime:
    """A time field that is always there."""
    return datetime.fromtimestamp(float(value), UTC)


def text(h: dict[bytes, bytes]) -> dict[str, str]:
    """A hash read from Redis, as text."""
    return {k.decode(): v.decode() for k, v in h.items()}


def place(s: dict[str, str]) -> dict[str, Any]:
    """The grid cell and position fields an order and an incident record share (empty: None)."""
    return {
        "grid_id": s["grid_id"],
        "grid_name": s.get("grid_name") or None,
        **{level: s.get(level) or None for level in ("team", "village", "township", "district")},
        "lat": float(s["lat"]),
        "lon": float(s["lon"]),
    }


def place_fields(e: IncidentEvent | DeviceEvent) -> dict[str, str]:
    """The grid cell and position fields an order's (or a maintenance order's) hash stores, from
    the event that made it ('' when absent; `place` reads them back)."""
    return {
        "team": e.team or "",
        "grid_id": e.grid_id,
        "grid_name": e.grid_name or "",
        "village": e.village or "",
        "township": e.township or "",
        "district": e.district or "",
        "lat": repr(e.lat),
        "lon": repr(e.lon),
    }


def levels(e: IncidentEvent) -> dict[str, str | None]:
    return {"team": e.team, "village": e.village, "township": e.township, "district": e.district}


def order_fields(
    oid: str, e: IncidentEvent, chain: list[str], now: datetime, deadline: datetime
) -> dict[str, str]:
    """The hash of a new order for the `opened` event `e`, dispatched at `now`."""
    return {
        "id": oid,
        "incident_id": e.incident_id,
        "state": OrderState.PENDING.value,
        "severity": e.severity.value,
        **place_fields(e),
        "created_at": epoch(now),
        "detected_at": epoch(e.first_seen),  # the incident's first detection was observed
        "sla_deadline": epoch(deadline),
        "responder": chain[0],
        "level": "0",
        "escalations": "0",
        "chain": json.dumps(chain),
    }


def order(h: dict[bytes, bytes]) -> Order:
    s = text(h)

    def opt(name: str) -> str | None:
        return s.get(name) or None

    return Order(
        id=s["id"],
        incident_id=s["incident_id"],
        state=OrderState(s["state"]),
        severity=Severity(s["severity"]),
        **place(s),
        created_at=at(h[b"created_at"]),
        detected_at=from_epoch(h.get(b"detected_at")),
        acked_at=from_epoch(h.get(b"acked_at")),
        on_scene_at=from_epoch(h.get(b"on_scene_at")),
        closed_at=from_epoch(h.get(b"closed_at")),
        resolution=Resolution(s["resolution"]) if s.get("resolution") else None,
        cause=opt("cause"),
        note=opt("note"),
        responder=s["responder"],
        level=int(s["level"]),
        escalations=int(s["escalations"]),
        sla_deadline=from_epoch(h.get(b"sla_deadline")),
        incident_closed_at=from_epoch(h.get(b"incident_closed_at")),
        mask=opt("mask"),
    )


def message(kind: str, oid: str, e: IncidentEvent, at: datetime) -> list[str]:
    """The fields of a notification (fw:notify:<target>) about order `oid`."""
    text = (
        f"{e.severity.value} fire warning in {e.grid_name or e.grid_id} ({e.lat:.5f}, {e.lon:.5f})"
    )
    return [
        "kind", kind, "order", oid, "incident", e.incident_id, "severity", e.severity.value,
        "grid_id", e.grid_id, "lat", repr(e.lat), "lon", repr(e.lon), "at", epoch(at),
        "text", text,
    ]  # fmt: skip
