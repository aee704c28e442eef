"""GET /v1/maintenance: the open maintenance orders (silent devices, blind cells), by team."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from firewatch.clock import FakeClock
from firewatch.linkage.maintenance import maintenance_id
from firewatch.linkage.service import Linkage

from ..linkage.conftest import T0
from ..linkage.test_maintenance import device
from .conftest import Bearer


def test_open_maintenance_orders_newest_first_and_a_team_sees_its_own(
    client: TestClient, linkage: Linkage, bearer: Bearer, clock: FakeClock
) -> None:
    down = device("device_down", 0, dev="s1", last_heard=T0 - timedelta(minutes=30))
    other = device("device_down", 10, dev="s2", team="team-B")
    blind = device("cell_blind", 20, dev=None, devices=2)
    back = device("device_down", 5, dev="s3")
    linkage.consume([down, other, blind, back])
    clock.advance(minutes=40)
    linkage.consume([device("device_up", 30, dev="s3")])  # resolved: no longer listed

    centre = bearer("dashboard")
    answer = client.get("/v1/maintenance", headers=centre)
    assert answer.status_code == 200
    body = answer.json()
    assert body["team"] is None
    assert [o["id"] for o in body["orders"]] == [
        maintenance_id(e.event_id) for e in (blind, other, down)
    ]
    first = body["orders"][2]
    assert (first["kind"], first["subject"], first["source"], first["state"]) == (
        "device",
        "s1",
        "sensor",
        "open",
    )
    assert first["last_heard"] == (T0 - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    assert body["orders"][0]["kind"] == "cell" and body["orders"][0]["devices"] == 2

    team_b = bearer("team:team-B")
    mine = client.get("/v1/maintenance", headers=team_b).json()
    assert [o["subject"] for o in mine["orders"]] == ["s2"] and mine["team"] == "team-B"
    refused = client.get("/v1/maintenance?team=team-A", headers=team_b)
    assert refused.status_code == 403
    assert client.get("/v1/maintenance").status_code == 401
    one = client.get("/v1/maintenance?limit=1", headers=centre).json()
    assert len(one["orders"]) == 1


def test_a_team_acknowledges_its_own_maintenance_order(
    client: TestClient, linkage: Linkage, bearer: Bearer, clock: FakeClock
) -> None:
    mine, theirs = (
        device("device_down", 0, dev="s1"),
        device("device_down", 0, dev="s2", team="team-B"),
    )
    linkage.consume([mine, theirs])
    mid, other = maintenance_id(mine.event_id), maintenance_id(theirs.event_id)
    team_a = bearer("team:team-A")
    refused = client.post(f"/v1/maintenance/{other}/ack", headers=team_a)
    assert refused.status_code == 403 and "belongs to team team-B" in refused.json()["detail"]
    assert client.post(f"/v1/maintenance/{mid}/ack", headers=bearer("dashboard")).status_code == 403
    assert client.post("/v1/maintenance/mnt-none/ack", headers=team_a).status_code == 404
    assert client.post(f"/v1/maintenance/{mid}/ack").status_code == 401
    clock.advance(minutes=3)
    answer = client.post(f"/v1/maintenance/{mid}/ack", headers=team_a)
    assert answer.status_code == 200
    body = answer.json()
    assert body["changed"] and body["order"]["acked_by"] == "team:team-A"
    assert body["order"]["state"] == "open"
    again = client.post(f"/v1/maintenance/{mid}/ack", headers=team_a).json()
    assert not again["changed"] and again["order"]["acked_at"] == body["order"]["acked_at"]
    listed = client.get("/v1/maintenance", headers=team_a).json()["orders"]
    assert [(o["id"], o["acked_by"]) for o in listed] == [(mid, "team:team-A")]
    untouched = linkage.maintenance.get(other)
    assert untouched is not None and untouched.acked_at is None
    linkage.consume([device("device_up", 30, dev="s1")])
    late = client.post(f"/v1/maintenance/{mid}/ack", headers=team_a)
    assert late.status_code == 409 and "resolved" in late.json()["detail"]
