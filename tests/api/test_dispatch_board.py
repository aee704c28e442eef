"""GET /v1/dispatches without `team`: the dispatch board, every team's open orders newest first,
for the dashboard and admin; a team's token still gets its own team's list."""

from __future__ import annotations

from fastapi.testclient import TestClient

from firewatch.clock import FakeClock
from firewatch.linkage.service import Linkage

from ..linkage.conftest import event, oid
from .conftest import Bearer


def test_the_board_lists_every_teams_open_orders_newest_first(
    client: TestClient, linkage: Linkage, bearer: Bearer, clock: FakeClock
) -> None:
    for n, team in ((1, "team-A"), (2, "team-B"), (3, None), (4, "team-A")):
        linkage.consume([event(n=n, team=team, minutes=n)])
        clock.advance(minutes=1)
    for role in ("dashboard", "admin"):
        board = client.get("/v1/dispatches", headers=bearer(role))
        assert board.status_code == 200
        body = board.json()
        assert body["team"] is None
        assert [o["id"] for o in body["orders"]] == [oid(4), oid(3), oid(2), oid(1)]
        assert body["orders"][1] == linkage.store.get(oid(3)).model_dump(mode="json")
    dashboard = bearer("dashboard", name="wall")
    first = client.get("/v1/dispatches", params={"limit": 2}, headers=dashboard).json()
    assert [o["id"] for o in first["orders"]] == [oid(4), oid(3)]

    # a team closes an order over HTTP: it leaves the board
    team_a = bearer("team:team-A")
    closing = {"outcome": "extinguished"}
    assert client.post(f"/v1/dispatches/{oid(4)}/close", headers=team_a, json=closing).is_success
    after = client.get("/v1/dispatches", headers=dashboard).json()
    assert [o["id"] for o in after["orders"]] == [oid(3), oid(2), oid(1)]

    # a team's token: its own team's list, oldest first, as before (`limit` is the board's)
    mine = client.get("/v1/dispatches", params={"limit": 1}, headers=team_a).json()
    assert mine == {"team": "team-A", "orders": [linkage.store.get(oid(1)).model_dump(mode="json")]}


def test_the_board_is_bounded_and_needs_a_reading_role(client: TestClient, bearer: Bearer) -> None:
    dashboard = bearer("dashboard")
    for limit in (0, 1001, "all"):
        answer = client.get("/v1/dispatches", params={"limit": limit}, headers=dashboard)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["query", "limit"]
    assert client.get("/v1/dispatches").status_code == 401
    refused = client.get("/v1/dispatches", headers=bearer("ingest"))
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "token 'ingest' has role ingest: this needs admin or dashboard or team:<id>"
    )
