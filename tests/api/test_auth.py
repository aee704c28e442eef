"""Bearer tokens: kept as sha256 only, checked on every request, roles enforced, rate limited
per token across API processes (the counter is in Redis)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from firewatch.api import keys
from firewatch.api.gate import Gate
from firewatch.api.ratelimit import RateLimiter
from firewatch.api.tokens import Role, TokenError, TokenRecord, TokenStore, digest
from firewatch.clock import FakeClock
from firewatch.linkage.server import RedisProcess, async_twin

from .conftest import Bearer


def admitted(client: redis.Redis, token: str, clock: FakeClock) -> TokenRecord | None:
    """The record the API's gate finds for `token` (None: refused)."""

    async def admit() -> TokenRecord | None:
        aclient = async_twin(client)
        try:
            found = await Gate(aclient, RateLimiter(1000, 60)).admit(token, clock.now())
        finally:
            await aclient.aclose()
        return None if found is None else found.record

    return asyncio.run(admit())


def test_a_request_without_a_good_token_is_401_with_a_bearer_challenge(
    client: TestClient, bearer: Bearer, redis_client: redis.Redis
) -> None:
    for headers in ({}, {"Authorization": "Bearer fw_not-a-token"}, {"Authorization": "Basic x"}):
        answer = client.get("/v1/dispatches", params={"team": "team-A"}, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in answer.json()["detail"]
    good = bearer("dashboard")
    assert client.get("/v1/dispatches", params={"team": "team-A"}, headers=good).status_code == 200
    assert TokenStore(redis_client).revoke("dashboard")
    answer = client.get("/v1/dispatches", params={"team": "team-A"}, headers=good)
    assert (
        answer.status_code == 401 and answer.json()["detail"] == "unknown or revoked bearer token"
    )


def test_roles_admit_only_what_they_are_for(client: TestClient, bearer: Bearer) -> None:
    ingest, dashboard, team, admin = (
        bearer(r) for r in ("ingest", "dashboard", "team:team-A", "admin")
    )
    listing = {"params": {"team": "team-A"}}
    assert client.get("/v1/dispatches", headers=ingest, **listing).status_code == 403
    for headers in (dashboard, team, admin):
        assert client.get("/v1/dispatches", headers=headers, **listing).status_code == 200
    # the dashboard reads, never acts
    answer = client.post("/v1/dispatches/ord-0000000000000001/ack", headers=dashboard)
    assert answer.status_code == 403
    assert answer.json()["detail"] == (
        "token 'dashboard' has role dashboard: this needs admin or team:<id>"
    )
    # only ingest and admin send detections; the report is for the dashboard and admin
    for headers, status in ((dashboard, 403), (team, 403), (ingest, 200), (admin, 200)):
        sent = client.post("/v1/detections", headers=headers, json=[])
        assert sent.status_code == status
        assert client.get("/v1/report", headers=headers).status_code == (
            200 if headers in (dashboard, admin) else 403
        )


def test_redis_keeps_only_the_tokens_hash(redis_client: redis.Redis, clock: FakeClock) -> None:
    store = TokenStore(redis_client)
    token = store.add("team:team-T05-V03", "phone-T05-V03", clock.now())
    assert token.startswith("fw_") and len(token) > 40
    dump = b" ".join(
        field + b" " + value
        for key in redis_client.keys(keys.PREFIX + "*")
        for field, value in redis_client.hgetall(key).items()
    )
    assert token.encode() not in dump
    assert digest(token).encode() in dump
    found = admitted(redis_client, token, clock)
    assert found is not None and found.role == "team:team-T05-V03"
    assert [(t.name, t.role) for t in store.records()] == [("phone-T05-V03", "team:team-T05-V03")]
    with pytest.raises(TokenError, match="a token named 'phone-T05-V03' exists"):
        store.add("admin", "phone-T05-V03", clock.now())
    assert store.revoke("phone-T05-V03") and not store.revoke("phone-T05-V03")
    assert admitted(redis_client, token, clock) is None
    # what is left: the rate-limit counter of the one admission, which expires by itself
    assert [k for k in redis_client.keys(keys.PREFIX + "*") if b":rate:" not in k] == []


def test_a_revoked_tokens_name_given_to_a_new_token_does_not_admit_the_old_one(
    redis_client: redis.Redis, clock: FakeClock
) -> None:
    store = TokenStore(redis_client)
    old = store.add("admin", "ops", clock.now())
    record = redis_client.hget(keys.TOKENS, digest(old))
    assert store.revoke("ops")
    new = store.add("dashboard", "ops", clock.now())
    # the old token's record put back by hand (a restored backup): its name is now the new one's
    redis_client.hset(keys.TOKENS, digest(old), record)
    assert admitted(redis_client, old, clock) is None
    found = admitted(redis_client, new, clock)
    assert found is not None and found.role == "dashboard"


@pytest.mark.parametrize("role", ["root", "team:", "team", "dashboard:x", "team: A", ""])
def test_a_role_that_does_not_exist_is_refused(role: str) -> None:
    with pytest.raises(TokenError, match="choose ingest, dashboard, admin or team:<team id>"):
        Role.parse(role)


def test_tokens_from_the_command_line_print_once_and_list_without_tokens(
    redis_client: redis.Redis,
    clock: FakeClock,
    redis_session: RedisProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from firewatch.cli import main

    url = ["--redis-url", redis_session.url]
    assert main(["token", "add", "--role", "team:team-A", "--name", "phone-A", *url]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("fw_") and "shown this once" in out.err
    assert admitted(redis_client, token, clock) is not None
    assert main(["token", "add", "--role", "dashboard", "--name", "wall", *url]) == 0
    capsys.readouterr()
    assert main(["token", "list", *url]) == 0
    listing = capsys.readouterr().out
    assert "phone-A" in listing and "team:team-A" in listing and "wall" in listing
    assert token not in listing
    assert main(["token", "revoke", "phone-A", *url]) == 0
    assert admitted(redis_client, token, clock) is None
    assert main(["token", "revoke", "phone-A", *url]) == 2
    assert "no token named 'phone-A'" in capsys.readouterr().err
    assert main(["token", "add", "--role", "root", "--name", "x", *url]) == 2
    assert "role 'root'" in capsys.readouterr().err


def test_the_rate_limit_holds_across_api_processes_and_resets_with_the_window(
    make_app: Callable[..., FastAPI], bearer: Bearer, clock: FakeClock
) -> None:
    headers = bearer("dashboard")
    params = {"team": "team-A"}
    # two API processes on one Redis: 3 requests per minute for the token, whichever answers
    with (
        TestClient(make_app(api_rate_limit=3, api_rate_window=60)) as one,
        TestClient(make_app(api_rate_limit=3, api_rate_window=60)) as two,
    ):
        for api in (one, two, one):
            assert api.get("/v1/dispatches", params=params, headers=headers).status_code == 200
        refused = two.get("/v1/dispatches", params=params, headers=headers)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "60"  # T0 is on a minute boundary
        assert "'dashboard': more than 3 requests in 60 s" in refused.json()["detail"]
        # another token has its own count
        assert one.get("/v1/dispatches", params=params, headers=bearer("admin")).status_code == 200
        clock.advance(seconds=45)
        assert (
            one.get("/v1/dispatches", params=params, headers=headers).headers["Retry-After"] == "15"
        )
        clock.advance(seconds=15)
        assert two.get("/v1/dispatches", params=params, headers=headers).status_code == 200


def test_tokens_are_never_logged(
    client: TestClient, bearer: Bearer, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer("admin")
    token = headers["Authorization"].removeprefix("Bearer ")
    with caplog.at_level(logging.DEBUG):
        client.get("/v1/dispatches", params={"team": "team-A"}, headers=headers)
        client.post("/v1/dispatches/ord-none/ack", headers=headers)
        client.get("/v1/report", headers={"Authorization": "Bearer fw_wrong"})
    assert caplog.records and token not in caplog.text and "fw_wrong" not in caplog.text


def test_the_gate_keeps_the_records_of_admitted_tokens_only_and_at_most_known_max(
    redis_client: redis.Redis, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from firewatch.api import gate

    monkeypatch.setattr(gate, "KNOWN_MAX", 2)
    store = TokenStore(redis_client)
    tokens = [store.add("team:team-A", f"phone-{n}", clock.now()) for n in range(3)]

    async def run() -> list[list[bool]]:
        aclient = async_twin(redis_client)
        try:
            g = Gate(aclient, RateLimiter(1000, 60))
            assert await g.admit("fw_not-a-token", clock.now()) is None
            seen = []
            for token in tokens:
                assert await g.admit(token, clock.now()) is not None
                seen.append([g.known(t) is not None for t in tokens])
            assert g.known("fw_not-a-token") is None  # a refused token is never kept
            store.revoke("phone-2")
            assert await g.admit(tokens[2], clock.now()) is None
            seen.append([g.known(t) is not None for t in tokens])
            return seen
        finally:
            await aclient.aclose()

    # full at two: forgotten all at once, then filled again; a revoked token forgotten
    assert asyncio.run(run()) == [
        [True, False, False],
        [True, True, False],
        [False, False, True],
        [False, False, False],
    ]


def test_concurrent_requests_of_a_token_revoked_meanwhile_are_each_told_stale(
    redis_client: redis.Redis, clock: FakeClock
) -> None:
    from firewatch.api.gate import Stale
    from firewatch.linkage.model import Action
    from firewatch.linkage.transitions import Transition

    store = TokenStore(redis_client)
    token = store.add("team:team-A", "phone", clock.now())
    move = Transition.of_team("ord-x", Action.ACK, clock.now(), "team:team-A", "team-A")

    async def run() -> list[BaseException | object]:
        aclient = async_twin(redis_client)
        try:
            g = Gate(aclient, RateLimiter(1000, 60))
            assert await g.admit(token, clock.now()) is not None  # known from now on
            store.revoke("phone")
            return await asyncio.gather(
                *(g.admit_and_apply(token, clock.now(), move, "{}") for _ in range(3)),
                return_exceptions=True,
            )
        finally:
            await aclient.aclose()

    # each refused before anything is counted or changed: none fails on the others' forgetting
    assert [type(r) for r in asyncio.run(run())] == [Stale, Stale, Stale]
    counted = [int(redis_client.get(k) or 0) for k in redis_client.keys(keys.PREFIX + "rate:*")]
    assert counted == [1]  # the first admission's; the three refusals counted nothing
