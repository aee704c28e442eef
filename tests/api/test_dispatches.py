"""A field team works its orders over HTTP with the same Linkage transitions as the CLI; another
team's order is refused before anything changes."""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from firewatch.api import keys
from firewatch.api.tokens import TokenRecord, TokenStore, digest
from firewatch.clock import FakeClock
from firewatch.linkage.keys import FEED
from firewatch.linkage.service import Linkage

from ..linkage.conftest import event, oid
from .conftest import Bearer


def test_a_team_acks_arrives_and_closes_its_order(
    client: TestClient, linkage: Linkage, bearer: Bearer, clock: FakeClock
) -> None:
    linkage.consume([event(n=1, team="team-A")])
    team = bearer("team:team-A")
    clock.advance(minutes=3)
    answer = client.post(f"/v1/dispatches/{oid(1)}/ack", headers=team)
    assert answer.status_code == 200
    body = answer.json()
    assert body["changed"] is True and body["order"]["state"] == "acknowledged"
    again = client.post(f"/v1/dispatches/{oid(1)}/ack", headers=team).json()
    assert again["changed"] is False and again["order"] == body["order"]
    clock.advance(minutes=20)
    assert (
        client.post(f"/v1/dispatches/{oid(1)}/arrive", headers=team).json()["order"]["state"]
        == "on_scene"
    )
    clock.advance(hours=1)
    closing = {"outcome": "false_alarm", "cause": "known_heat_source", "note": "kiln"}
    closed = client.post(f"/v1/dispatches/{oid(1)}/close", headers=team, json=closing).json()
    assert closed["changed"] and closed["order"]["state"] == "closed"
    assert closed["order"]["mask"] == f"false-alarm-{oid(1)}"  # the closed loop, as on the CLI
    assert [m.name for m in linkage.store.masks()] == [f"false-alarm-{oid(1)}"]
    order = linkage.store.get(oid(1))
    assert order.resolution == "false_alarm" and order.note == "kiln"
    assert order.closed_at == clock.now()

    refused = client.post(f"/v1/dispatches/{oid(1)}/ack", headers=team)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(f"order {oid(1)} (closed): ")
    detail = client.get(f"/v1/dispatches/{oid(1)}", headers=bearer("dashboard")).json()
    assert [e["kind"] for e in detail["log"]][-2:] == ["close", "mask"]
    acted = [(e["kind"], e["by"]) for e in detail["log"] if e["kind"] in ("ack", "arrive", "close")]
    assert acted == [("ack", "team:team-A"), ("arrive", "team:team-A"), ("close", "team:team-A")]


def test_another_teams_order_is_403_and_changes_nothing(
    client: TestClient, linkage: Linkage, bearer: Bearer
) -> None:
    linkage.consume([event(n=1, team="team-A")])
    before, log = linkage.store.get(oid(1)), linkage.store.log(oid(1))
    other = bearer("team:team-B")
    feed = linkage.store.r.xlen(FEED)
    false_alarm = {"outcome": "false_alarm", "cause": "known_heat_source"}  # would make a mask
    for action, body in (
        ("ack", None),
        ("arrive", None),
        ("close", {"outcome": "other"}),
        ("close", false_alarm),
    ):
        answer = client.post(f"/v1/dispatches/{oid(1)}/{action}", headers=other, json=body)
        assert answer.status_code == 403
        assert answer.json()["detail"] == (
            f"order {oid(1)} belongs to team team-A: token 'team-team-B' is for team team-B"
        )
    assert client.get(f"/v1/dispatches/{oid(1)}", headers=other).status_code == 403
    assert linkage.store.get(oid(1)) == before and linkage.store.log(oid(1)) == log
    assert linkage.store.r.xlen(FEED) == feed and linkage.store.masks() == []
    # the admin may act for any team
    admin = client.post(f"/v1/dispatches/{oid(1)}/ack", headers=bearer("admin", name="alice"))
    assert admin.status_code == 200 and admin.json()["changed"]
    assert [e.by for e in linkage.store.log(oid(1)) if e.kind == "ack"] == ["admin:alice"]


def test_an_unknown_order_is_404_and_a_bad_close_is_422(
    client: TestClient, linkage: Linkage, bearer: Bearer
) -> None:
    linkage.consume([event(n=1, team="team-A")])
    for headers in (bearer("team:team-A"), bearer("admin")):
        answer = client.post("/v1/dispatches/ord-missing/ack", headers=headers)
        assert answer.status_code == 404
        assert answer.json()["detail"] == "no dispatch order 'ord-missing'"
    team = bearer("team:team-A", name="phone")
    for body in ({}, {"outcome": "burnt"}, {"outcome": "other", "colour": "red"}):
        answer = client.post(f"/v1/dispatches/{oid(1)}/close", headers=team, json=body)
        assert answer.status_code == 422, body
    assert linkage.store.get(oid(1)).state == "pending"


def test_a_team_lists_its_own_open_orders_the_dashboard_any_teams(
    client: TestClient, linkage: Linkage, bearer: Bearer
) -> None:
    linkage.consume(
        [event(n=1, team="team-A"), event(n=2, team="team-B", minutes=1), event(n=3, minutes=2)]
    )
    team_a = bearer("team:team-A")
    mine = client.get("/v1/dispatches", headers=team_a).json()
    assert mine["team"] == "team-A" and [o["id"] for o in mine["orders"]] == [oid(1), oid(3)]
    assert (
        client.get("/v1/dispatches", params={"team": "team-A"}, headers=team_a).status_code == 200
    )
    other = client.get("/v1/dispatches", params={"team": "team-B"}, headers=team_a)
    assert other.status_code == 403 and "may not list team team-B" in other.json()["detail"]

    dashboard = bearer("dashboard")
    listed = client.get("/v1/dispatches", params={"team": "team-B"}, headers=dashboard).json()
    assert [o["id"] for o in listed["orders"]] == [oid(2)]
    assert listed["orders"][0] == linkage.store.get(oid(2)).model_dump(mode="json")
    # without `team`: every team's open orders (the dispatch board, test_dispatch_board.py)
    board = client.get("/v1/dispatches", headers=dashboard).json()
    assert board["team"] is None and [o["id"] for o in board["orders"]] == [oid(3), oid(2), oid(1)]


def scripts_run(r: redis.Redis) -> int:
    """Lua scripts Redis has run so far (EVALSHA and EVAL calls)."""
    stats = r.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


def rate_counts(r: redis.Redis) -> list[int]:
    return sorted(int(r.get(k) or 0) for k in r.keys(keys.PREFIX + "rate:*"))


def test_a_known_team_token_acts_in_one_script_and_a_revoked_one_changes_nothing(
    client: TestClient, linkage: Linkage, bearer: Bearer, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=n, team="team-A", minutes=n) for n in (1, 2, 3)])
    team = bearer("team:team-A", name="phone")
    for headers in ({}, {"Authorization": "Basic x"}):  # no bearer token: nothing asked of Redis
        before = scripts_run(redis_client)
        answer = client.post(f"/v1/dispatches/{oid(1)}/ack", headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["detail"].startswith("missing bearer token")
        assert scripts_run(redis_client) == before
    # the token's first request: the gate, then the transition (two scripts); it is known after
    before = scripts_run(redis_client)
    assert client.post(f"/v1/dispatches/{oid(1)}/ack", headers=team).json()["changed"]
    assert scripts_run(redis_client) - before == 2
    for n, action, state in ((2, "ack", "acknowledged"), (2, "arrive", "on_scene")):
        before = scripts_run(redis_client)
        answer = client.post(f"/v1/dispatches/{oid(n)}/{action}", headers=team)
        assert answer.status_code == 200 and answer.json()["order"]["state"] == state
        assert scripts_run(redis_client) - before == 1  # token, count and change in one
    assert rate_counts(redis_client) == [3]  # every request counted once
    assert [e.by for e in linkage.store.log(oid(2)) if e.kind in ("ack", "arrive")] == [
        "team:team-A",
        "team:team-A",
    ]
    # revoked: refused at once; nothing changed, nothing counted
    feed = redis_client.xlen(FEED)
    assert TokenStore(redis_client).revoke("phone")
    for action in ("ack", "arrive"):
        answer = client.post(f"/v1/dispatches/{oid(3)}/{action}", headers=team)
        assert answer.status_code == 401
        assert answer.json()["detail"] == "unknown or revoked bearer token"
    assert linkage.store.get(oid(3)).state == "pending" and redis_client.xlen(FEED) == feed
    assert rate_counts(redis_client) == [3]


def test_a_known_tokens_record_replaced_in_redis_is_read_again_before_anything_changes(
    client: TestClient, linkage: Linkage, bearer: Bearer, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, team="team-A"), event(n=2, team="team-A", minutes=1)])
    team = bearer("team:team-A", name="phone")
    assert client.post(f"/v1/dispatches/{oid(1)}/ack", headers=team).status_code == 200
    # the record under the token's digest now says team-B (e.g. restored from another backup):
    # what this process knew (team-A, which owns the order) must not be acted on
    token = team["Authorization"].removeprefix("Bearer ")
    record = TokenRecord.model_validate_json(redis_client.hget(keys.TOKENS, digest(token)) or "")
    redis_client.hset(
        keys.TOKENS,
        digest(token),
        record.model_copy(update={"role": "team:team-B"}).model_dump_json(),
    )
    answer = client.post(f"/v1/dispatches/{oid(2)}/ack", headers=team)
    assert answer.status_code == 403 and "is for team team-B" in answer.json()["detail"]
    assert linkage.store.get(oid(2)).state == "pending"


def test_a_known_team_token_past_its_rate_limit_is_429_and_changes_nothing(
    make_app: Callable[..., FastAPI], linkage: Linkage, bearer: Bearer, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=n, team="team-A", minutes=n) for n in (1, 2, 3)])
    team = bearer("team:team-A")
    with TestClient(make_app(api_rate_limit=2, api_rate_window=60)) as client:
        for n in (1, 2):  # the gate alone, then in one script with the ack
            assert client.post(f"/v1/dispatches/{oid(n)}/ack", headers=team).status_code == 200
        feed = redis_client.xlen(FEED)
        refused = client.post(f"/v1/dispatches/{oid(3)}/ack", headers=team)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert "'team-team-A': more than 2 requests in 60 s" in refused.json()["detail"]
    assert linkage.store.get(oid(3)).state == "pending" and redis_client.xlen(FEED) == feed
    assert rate_counts(redis_client) == [3]
