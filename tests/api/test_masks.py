"""Suppression masks over HTTP: the list, an admin muting a grid cell for some minutes, removing
a mask; a muted cell's detections are suppressed by the API's own engine until the mute ends or
is removed (test grid: cell c0-0 is [118.80, 118.81] x [28.90, 28.91])."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import redis
from fastapi.testclient import TestClient

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage import keys
from firewatch.linkage.service import Linkage

from ..linkage.conftest import T0, event, oid
from .conftest import Bearer, Headers
from .test_detections import camera, sensor

MUTE = f"mute-c0-0-{int(T0.timestamp())}"
CELL = [[118.8, 28.9], [118.81, 28.9], [118.81, 28.91], [118.8, 28.91], [118.8, 28.9]]


def send(client: TestClient, headers: Headers, records: list[dict[str, Any]]) -> None:
    answer = client.post("/v1/detections", json=records, headers=headers)
    assert answer.status_code == 200 and answer.json()["accepted"] == len(records), answer.text


def incidents(r: redis.Redis) -> list[str]:
    return [m.decode() for m in r.zrange(keys.INCIDENTS_BY_FIRST_SEEN, 0, -1)]


def flame_then_grace(
    client: TestClient, ingest: Headers, clock: FakeClock, at: datetime, n: int
) -> None:
    """A confident flame in c0-0 at `at`, then event time 12 minutes on (past the grace)."""
    clock.set(max(clock.now(), at))
    send(client, ingest, [camera(at, n=n)])
    clock.set(at + timedelta(minutes=12))
    send(client, ingest, [sensor(at + timedelta(minutes=12), n=n)])


def test_an_admin_mutes_a_cell_and_the_dashboard_lists_it(
    client: TestClient,
    bearer: Bearer,
    redis_client: redis.Redis,
    clock: FakeClock,
    linkage: Linkage,
) -> None:
    admin = bearer("admin", name="alice")
    note = "permitted burn, ticket 17"
    answer = client.post(
        "/v1/masks", json={"grid_id": "c0-0", "minutes": 90, "note": note}, headers=admin
    )
    assert answer.status_code == 201
    body = answer.json()
    end = (T0 + timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    assert body["mask"]["name"] == MUTE and body["mask"]["reason"] == "muted"
    assert body["mask"]["geometry"] == {"type": "Polygon", "coordinates": [CELL]}
    assert body["mask"]["start"] == T0.isoformat().replace("+00:00", "Z")
    assert body["mask"]["end"] == end
    assert body["active"] is True and body["grid_id"] == "c0-0"
    assert body["origin"] == {"by": "admin:alice", "at": body["mask"]["start"], "note": note}
    # stored as the closed loop's masks are: fw:masks and a new version
    assert redis_client.hexists(keys.MASKS, MUTE) and redis_client.get(keys.MASKS_VERSION) == b"1"

    # a false-alarm closure's mask is listed beside it, with no cell and no origin
    linkage.consume([event(n=1, team="team-A")])
    closing = {"outcome": "false_alarm", "cause": "known_heat_source"}
    client.post(f"/v1/dispatches/{oid(1)}/close", headers=admin, json=closing)
    listed = client.get("/v1/masks", headers=bearer("dashboard")).json()["masks"]
    assert [(m["mask"]["name"], m["grid_id"], m["active"]) for m in listed] == [
        (f"false-alarm-{oid(1)}", None, True),
        (MUTE, "c0-0", True),
    ]
    assert listed[0]["origin"] is None and listed[1] == body
    clock.advance(minutes=90)  # the mute's end: listed, inactive
    listed = client.get("/v1/masks", headers=bearer("dashboard", name="wall")).json()["masks"]
    assert [m["active"] for m in listed] == [True, False]


def test_mutes_that_cannot_be_made_change_nothing(
    client: TestClient, bearer: Bearer, redis_client: redis.Redis
) -> None:
    admin = bearer("admin")
    unknown = client.post("/v1/masks", json={"grid_id": "c99-9", "minutes": 5}, headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "grid_id 'c99-9': the grid has no such cell"
    for body in (
        {"grid_id": "c0-0", "minutes": 0},
        {"grid_id": "c0-0", "minutes": 43201},
        {"grid_id": "c0-0"},
        {"grid_id": "", "minutes": 5},
        {"grid_id": "c0-0", "minutes": 5, "by": "someone"},
    ):
        assert client.post("/v1/masks", json=body, headers=admin).status_code == 422, body
    assert client.post(
        "/v1/masks", json={"grid_id": "c0-0", "minutes": 5}, headers=admin
    ).is_success
    again = client.post("/v1/masks", json={"grid_id": "c0-0", "minutes": 9}, headers=admin)
    assert again.status_code == 409  # the same cell in the same second: the same name
    assert again.json()["detail"] == f"a suppression mask named {MUTE!r} exists: nothing changed"
    assert redis_client.hlen(keys.MASKS) == 1 and redis_client.get(keys.MASKS_VERSION) == b"1"
    missing = client.delete("/v1/masks/mute-nothing", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no suppression mask named 'mute-nothing'"
    assert redis_client.get(keys.MASKS_VERSION) == b"1"


def test_masks_need_the_right_role(client: TestClient, bearer: Bearer) -> None:
    mute = {"grid_id": "c0-0", "minutes": 5}
    assert client.get("/v1/masks").status_code == 401
    assert client.post("/v1/masks", json=mute).status_code == 401
    assert client.delete(f"/v1/masks/{MUTE}").status_code == 401
    for role in ("ingest", "team:team-A"):
        assert client.get("/v1/masks", headers=bearer(role)).status_code == 403
    dashboard = bearer("dashboard")
    assert client.get("/v1/masks", headers=dashboard).status_code == 200
    for role, headers in (("dashboard", dashboard), ("team:team-A", bearer("team:team-A", "t"))):
        refused = client.post("/v1/masks", json=mute, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["detail"].endswith(f"has role {role}: this needs admin")
        assert client.delete(f"/v1/masks/{MUTE}", headers=headers).status_code == 403


def test_a_muted_cell_is_suppressed_until_its_mute_ends(
    client: TestClient, bearer: Bearer, redis_client: redis.Redis, clock: FakeClock, engine: Engine
) -> None:
    admin, ingest = bearer("admin"), bearer("ingest")
    muted = client.post("/v1/masks", json={"grid_id": "c0-0", "minutes": 60}, headers=admin)
    assert muted.status_code == 201
    flame_then_grace(client, ingest, clock, T0 + timedelta(minutes=1), n=1)
    assert incidents(redis_client) == []  # no incident, no order
    assert engine.stats.suppressed_by[MUTE] == 1
    assert client.get("/v1/dispatches", headers=bearer("dashboard")).json()["orders"] == []
    # a flame after the mute's end (T0 + 60 min) opens an incident
    flame_then_grace(client, ingest, clock, T0 + timedelta(minutes=61), n=2)
    opened = client.get("/v1/incidents", headers=bearer("dashboard", "wall")).json()["incidents"]
    assert [(i["grid_id"], i["first_seen"]) for i in opened] == [("c0-0", "2026-04-04T03:01:00Z")]
    assert incidents(redis_client) == [opened[0]["id"]]


def test_a_removed_mute_suppresses_nothing(
    client: TestClient, bearer: Bearer, redis_client: redis.Redis, clock: FakeClock, engine: Engine
) -> None:
    admin, ingest = bearer("admin"), bearer("ingest")
    client.post("/v1/masks", json={"grid_id": "c0-0", "minutes": 60}, headers=admin)
    send(client, ingest, [sensor(T0)])  # a batch: the engine takes the mask from Redis
    assert [m.name for m in engine.masks] == [MUTE]
    removed = client.delete(f"/v1/masks/{MUTE}", headers=admin)
    assert removed.status_code == 200 and removed.json()["mask"]["name"] == MUTE
    assert not redis_client.hexists(keys.MASKS, MUTE) and not redis_client.hlen(keys.MASKS_BY)
    assert redis_client.get(keys.MASKS_VERSION) == b"2"
    flame_then_grace(client, ingest, clock, T0 + timedelta(minutes=1), n=1)
    assert engine.masks == []
    assert len(incidents(redis_client)) == 1
    assert client.get("/v1/masks", headers=admin).json() == {"masks": []}
