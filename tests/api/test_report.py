"""GET /v1/report answers linkage/report.py's Report as JSON: the same figures, not recomputed."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from firewatch.clock import FakeClock
from firewatch.linkage.model import Resolution
from firewatch.linkage.service import Linkage

from ..linkage.conftest import event, oid
from .conftest import Bearer


def test_the_report_is_the_linkage_report(
    client: TestClient, linkage: Linkage, bearer: Bearer, clock: FakeClock
) -> None:
    linkage.consume([event(n=1, team="team-A"), event(n=2, team="team-B"), event(n=3)])
    clock.advance(minutes=4)
    linkage.ack(oid(1))
    clock.advance(minutes=30)
    linkage.close(oid(1), Resolution.EXTINGUISHED)
    linkage.close(oid(2), Resolution.FALSE_ALARM, "other")
    dashboard = bearer("dashboard")
    answer = client.get(
        "/v1/report",
        params={"from": "2026-04-01", "to": "2026-04-30", "by": "team,district"},
        headers=dashboard,
    )
    assert answer.status_code == 200
    expected = linkage.report(date(2026, 4, 1), date(2026, 4, 30), ["team", "district"])
    assert answer.json() == expected.as_dict()
    overall = answer.json()["rows"][0]
    assert overall["scope"] == "all" and overall["issued"] == 3 and overall["closed"] == 2
    assert overall["response_rate"] == 1 / 3 and overall["to_ack_p50"] is not None
    # all time, default scopes
    assert client.get("/v1/report", headers=dashboard).json() == linkage.report().as_dict()


def test_a_bad_report_query_names_what_is_wrong(client: TestClient, bearer: Bearer) -> None:
    admin = bearer("admin")
    answer = client.get("/v1/report", params={"by": "team,village"}, headers=admin)
    assert answer.status_code == 400 and "['village']" in answer.json()["detail"]
    answer = client.get("/v1/report", params={"from": "2026-04-01"}, headers=admin)
    assert answer.status_code == 400
    assert answer.json()["detail"] == "a report range needs both a first and a last day"
    answer = client.get("/v1/report", params={"from": "April"}, headers=admin)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "from"]
