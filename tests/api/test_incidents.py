"""GET /v1/incidents (pages, filters, the whole query as CSV) and GET /v1/incidents/{id}: the
incident records the linkage queue keeps in Redis; a team's token sees its own team's only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from firewatch.api import incidents
from firewatch.linkage.service import Linkage

from ..linkage.conftest import T0, event, oid
from .conftest import Bearer


def iid(n: int) -> str:
    return f"inc-{n:016x}"


@pytest.fixture
def five(linkage: Linkage) -> None:
    """Five incidents, first seen 10 minutes apart; the first one closed since."""
    linkage.consume(
        [
            event(n=1, team="team-A"),
            event(n=2, team="team-B", severity="high", minutes=10),
            event(n=3, team="team-A", severity="high", minutes=20),
            event(n=4, team="team-A", severity="moderate", minutes=30, village="V2"),
            event(n=5, team=None, minutes=40),
        ]
    )
    closed = event("closed", n=1, seq=1, minutes=45, first_seen=T0, last_seen=T0)
    linkage.consume([closed])


def ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["incidents"]]


@pytest.mark.usefixtures("five")
def test_the_dashboard_pages_through_incidents_newest_first_with_filters(
    client: TestClient, bearer: Bearer, linkage: Linkage
) -> None:
    dashboard = bearer("dashboard")

    def get(**params: Any) -> Any:
        return client.get("/v1/incidents", params=params, headers=dashboard)

    every = get().json()
    assert [r["id"] for r in every["incidents"]] == [iid(5), iid(4), iid(3), iid(2), iid(1)]
    assert every["next"] is None
    stored, _ = linkage.store.incidents(limit=1)
    assert every["incidents"][0] == stored[0].model_dump(mode="json")
    # pages of two, following `next`
    pages, cursor = [], None
    while True:
        page = get(limit=2, **({"cursor": cursor} if cursor else {})).json()
        pages.append([r["id"] for r in page["incidents"]])
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == [[iid(5), iid(4)], [iid(3), iid(2)], [iid(1)]]

    assert ids(get(status="closed")) == [iid(1)]
    assert ids(get(status="open", severity="high")) == [iid(3), iid(2)]
    assert ids(get(team="team-A", severity="high")) == [iid(3)]
    assert ids(get(village="V2", township="T1", district="D1")) == [iid(4)]
    # bounds of the first detection, inclusive, in any UTC offset
    since = (T0 + timedelta(minutes=10)).astimezone().isoformat()
    until = "2026-04-04T10:30:00+08:00"  # T0 + 30 min
    assert ids(get(since=since, until=until)) == [iid(4), iid(3), iid(2)]
    assert get(since="2026-04-04T03:00:00Z").json() == {"incidents": [], "next": None}
    closed = get(status="closed").json()["incidents"][0]
    assert closed["closed_at"] == (T0 + timedelta(minutes=45)).isoformat().replace("+00:00", "Z")


@pytest.mark.usefixtures("five")
def test_a_team_token_sees_its_own_teams_incidents_only(client: TestClient, bearer: Bearer) -> None:
    team_a = bearer("team:team-A")
    assert ids(client.get("/v1/incidents", headers=team_a)) == [iid(4), iid(3), iid(1)]
    other = client.get("/v1/incidents", params={"team": "team-B"}, headers=team_a)
    assert other.status_code == 403
    assert (
        other.json()["detail"]
        == "token 'team-team-A' is for team team-A: it may not list team team-B"
    )
    own = client.get(f"/v1/incidents/{iid(3)}", headers=team_a)
    assert own.status_code == 200 and own.json()["team"] == "team-A"
    for n, team in ((2, "team-B"), (5, "(none)")):
        refused = client.get(f"/v1/incidents/{iid(n)}", headers=team_a)
        assert refused.status_code == 403
        assert refused.json()["detail"] == (
            f"incident {iid(n)} belongs to team {team}: token 'team-team-A' is for team team-A"
        )


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"status": "burning"}, "query parameter `status`: 'burning' is not open or closed"),
        (
            {"severity": "extreme"},
            "query parameter `severity`: 'extreme' is not one of low, moderate, high, critical",
        ),
        ({"since": "yesterday"}, "query parameter `since`: 'yesterday' is not an ISO 8601 time"),
        (
            {"until": "2026-04-04T10:00:00"},
            "query parameter `until`: '2026-04-04T10:00:00' has no UTC offset",
        ),
        (
            {"since": "2026-04-04T10:00:00 08:00"},  # a + not written %2B
            "query parameter `since`: '2026-04-04T10:00:00 08:00' is not an ISO 8601 time",
        ),
        (
            {"since": "2026-04-05T00:00:00Z", "until": "2026-04-04T00:00:00Z"},
            "query parameter `since` (2026-04-05T00:00:00Z) is after `until`",
        ),
        ({"limit": "0"}, "query parameter `limit`: '0' is not a whole number 1..500"),
        ({"limit": "501"}, "query parameter `limit`: '501' is not a whole number 1..500"),
        ({"limit": "ten"}, "query parameter `limit`: 'ten' is not a whole number 1..500"),
        ({"cursor": "nonsense"}, "query parameter `cursor`: incident listing: 'nonsense' is not"),
        ({"village": ""}, "query parameter `village`: give 1 to 200 characters"),
        ({"format": "xml"}, "query parameter `format`: 'xml' is not json or csv"),
        ({"format": "csv", "status": "x"}, "query parameter `status`: 'x' is not open or closed"),
    ],
)
def test_a_bad_filter_is_400_naming_the_parameter(
    client: TestClient, bearer: Bearer, params: dict[str, str], detail: str
) -> None:
    answer = client.get("/v1/incidents", params=params, headers=bearer("dashboard"))
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail)


def rows(answer: Any) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.text)))


@pytest.mark.usefixtures("five")
def test_csv_exports_the_whole_query_page_by_page(
    client: TestClient, bearer: Bearer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incidents, "CSV_PAGE", 2)  # three pages for five incidents
    dashboard = bearer("dashboard")
    answer = client.get("/v1/incidents", params={"format": "csv", "limit": "1"}, headers=dashboard)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="incidents-20260404T020000Z.csv"'
    )
    table = rows(answer)
    assert table[0] == list(incidents.COLUMNS)
    assert [r[0] for r in table[1:]] == [iid(5), iid(4), iid(3), iid(2), iid(1)]
    first = dict(zip(table[0], table[-1], strict=True))
    assert first == {
        "id": iid(1),
        "status": "closed",
        "severity": "low",
        "first_seen": T0.isoformat(),
        "last_seen": T0.isoformat(),
        "detections": "1",
        "grid_id": "cell-1",
        "grid_name": "cell 1",
        "team": "team-A",
        "village": "V1",
        "township": "T1",
        "district": "D1",
        "lat": "28.91",
        "lon": "118.9",
        "rule": "camera.confident",
        "order_id": oid(1),
        "closed_at": (T0 + timedelta(minutes=45)).isoformat(),
        # events of a firewatch before spreading fires were followed have no current position
        "current_lat": "",
        "current_lon": "",
        "area_km2": "0.0",
        "teams": "",
        # and were placed where their first detection was
        "located_by": "detection",
        "uncertainty_m": "",
    }
    assert dict(zip(table[0], table[1], strict=True))["team"] == ""  # incident 5: no team
    # Accept: text/csv asks for the same; filters and the team scope apply
    team_a = {**bearer("team:team-A"), "Accept": "text/csv"}
    scoped = client.get("/v1/incidents", params={"status": "open"}, headers=team_a)
    assert [r[0] for r in rows(scoped)[1:]] == [iid(4), iid(3)]
    nothing = client.get(
        "/v1/incidents", params={"format": "csv", "district": "D9"}, headers=team_a
    )
    assert rows(nothing) == [list(incidents.COLUMNS)]


@pytest.mark.usefixtures("five")
def test_one_incident_has_its_events_order_and_log(
    client: TestClient, bearer: Bearer, linkage: Linkage
) -> None:
    linkage.ack(oid(1), by="team:team-A")
    answer = client.get(f"/v1/incidents/{iid(1)}", headers=bearer("dashboard"))
    assert answer.status_code == 200
    body = answer.json()
    assert [e["event"] for e in body["events"]] == ["opened", "closed"]
    assert body["evidence"] == ["c1"] and body["status"] == "closed"
    assert body["order"]["id"] == oid(1) and body["order"]["state"] == "acknowledged"
    assert [e["kind"] for e in body["order_log"]] == ["created", "incident_closed", "ack"]
    assert body == linkage.store.incident(iid(1)).model_dump(mode="json")
    missing = client.get("/v1/incidents/inc-nope", headers=bearer("admin"))
    assert missing.status_code == 404 and missing.json()["detail"] == "no incident 'inc-nope'"


def test_incidents_need_a_token_of_a_role_that_reads_them(
    client: TestClient, bearer: Bearer
) -> None:
    for path in ("/v1/incidents", f"/v1/incidents/{iid(1)}"):
        assert client.get(path).status_code == 401
        refused = client.get(path, headers=bearer("ingest", name=f"ingest{len(path)}"))
        assert refused.status_code == 403
        assert refused.json()["detail"].endswith("this needs admin or dashboard or team:<id>")
