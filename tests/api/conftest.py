"""The HTTP API on a real Redis (tests/redis_fixtures.py), the test grid's engine and a FakeClock,
through FastAPI's TestClient. `bearer(role)` makes a token as `firewatch token add` does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff

from firewatch.api.app import create_app
from firewatch.api.ingest import EngineSink, Intake
from firewatch.api.tokens import TokenStore
from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage.consumer import LinkageConsumer
from firewatch.linkage.service import Linkage
from firewatch.rules import RuleSet
from firewatch.settings import Settings

from ..linkage.conftest import T0

ROOT = Path(__file__).resolve().parents[2]
Headers = dict[str, str]
Bearer = Callable[..., Headers]


@pytest.fixture
def settings(grid_file: Path) -> Settings:
    return Settings(grid=grid_file, rules=ROOT / "rules", cache_dir=None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def linkage(redis_client: redis.Redis, rules: RuleSet, clock: FakeClock) -> Linkage:
    assert rules.routing is not None
    return Linkage(redis_client, rules.routing, clock)


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


def engine_intake(linkage: Linkage, engine: Engine, rules: RuleSet) -> Intake:
    consumer = LinkageConsumer(linkage, backoff=NoBackoff(), max_attempts=1)
    return Intake(EngineSink(engine, consumer), rules.sources.max_future)


@pytest.fixture
def make_app(
    settings: Settings, linkage: Linkage, clock: FakeClock, engine: Engine, rules: RuleSet
) -> Callable[..., FastAPI]:
    """An app on the test Redis; keyword arguments override settings (e.g. api_rate_limit=3)."""

    def make(**overrides: Any) -> FastAPI:
        custom = settings.model_copy(update=overrides)
        return create_app(custom, linkage, clock, engine_intake(linkage, engine, rules))

    return make


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:  # runs the lifespan: the intake starts and stops
        yield c


@pytest.fixture
def bearer(redis_client: redis.Redis, clock: FakeClock) -> Bearer:
    """Headers with a new token of `role` (named after it unless `name` is given)."""
    store = TokenStore(redis_client)

    def make(role: str, name: str | None = None) -> Headers:
        token = store.add(role, name or role.replace(":", "-"), clock.now())
        return {"Authorization": f"Bearer {token}"}

    return make
