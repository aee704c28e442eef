"""/healthz answers while the process is up; /readyz says what is down, with 503."""

from __future__ import annotations

import asyncio
import socket

import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from firewatch.api.app import create_app
from firewatch.api.kafka import kafka_probe
from firewatch.api.ready import Readiness, redis_probe
from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage.service import Linkage
from firewatch.rules import RuleSet
from firewatch.settings import Settings

from .conftest import engine_intake


def closed_port() -> int:
    """A port on this machine that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_and_readiness_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    (check,) = ready.json()["checks"]
    assert ready.json()["ready"] and check["name"] == "redis" and check["ok"]
    assert check["detail"].startswith("PING answered by ") and check["detail"].endswith(".sock")


def test_readiness_is_503_naming_what_is_down(
    settings: Settings, rules: RuleSet, clock: FakeClock, engine: Engine
) -> None:
    # nothing listens there; no retries, so that the answer is the error (not a timeout)
    dead = redis.Redis(port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    assert rules.routing is not None
    linkage = Linkage(dead, rules.routing, clock)
    kafka = f"127.0.0.1:{closed_port()}"
    probes = {"redis": redis_probe(dead), "kafka": kafka_probe(kafka, 1.0)}
    app = create_app(settings, linkage, clock, engine_intake(linkage, engine, rules), probes=probes)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200  # up, not ready
        answer = client.get("/readyz")
        assert answer.status_code == 503
        checks = {c["name"]: c for c in answer.json()["checks"]}
        assert not answer.json()["ready"] and not checks["redis"]["ok"]
        assert checks["redis"]["detail"].startswith("ConnectionError: ")
        assert not checks["kafka"]["ok"] and checks["kafka"]["detail"]
        # a route that needs Redis says so, instead of failing with a 500
        down = client.get("/v1/report", headers={"Authorization": "Bearer fw_x"})
        assert down.status_code == 503 and down.json()["detail"].startswith("Redis unreachable: ")


def test_a_probe_that_hangs_is_down_after_the_timeout() -> None:
    async def hangs() -> str:
        await asyncio.sleep(30)
        return "never"

    async def answers() -> str:
        return "fine"

    readiness = Readiness({"slow": hangs, "quick": answers}, timeout=0.2)
    slow, quick = asyncio.run(readiness.check())
    assert (slow.name, slow.ok, slow.detail) == ("slow", False, "no answer within 0.2 s")
    assert (quick.name, quick.ok, quick.detail) == ("quick", True, "fine")
