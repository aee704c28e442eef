"""The dispatcher's batch logic on a real redis-server, without a broker: an event Redis refuses
(a script error, not an outage) is skipped alone, and the rest of its batch is dispatched."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import pytest
import redis

from firewatch.linkage import keys
from firewatch.linkage.service import Linkage
from firewatch.linkage.store import DispatchCounts
from firewatch.model import IncidentEvent
from firewatch.settings import Settings
from firewatch.stream.dispatcher import Dispatcher

from ..linkage.conftest import clock, event, linkage, routing  # noqa: F401  (fixtures)


class Assigned:
    """What Dispatcher.apply asks of its Kafka consumer."""

    def __init__(self) -> None:
        self.paused: list[Any] = []

    def assignment(self) -> set[Any]:
        return set()

    def pause(self, *tps: Any) -> None:
        self.paused += tps

    def resume(self, *tps: Any) -> None:
        pass


def test_an_event_redis_refuses_is_skipped_alone_and_its_batch_dispatched(
    linkage: Linkage,  # noqa: F811
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = Dispatcher(Settings.from_env(os.environ), linkage, escalate_every=30)
    poisoned = event(n=2)
    real = dispatcher.delivery.deliver

    def deliver(events: Sequence[IncidentEvent]) -> DispatchCounts:
        if any(e.event_id == poisoned.event_id for e in events):
            raise redis.ResponseError("user_script:1: something this event makes Lua refuse")
        return real(events)

    dispatcher.delivery.deliver = deliver  # type: ignore[method-assign]
    batch = [event(n=1), poisoned, event(n=3)]
    asyncio.run(dispatcher.apply(Assigned(), batch))
    orders = {m.decode() for m in redis_client.zrange(keys.ORDERS_BY_CREATED, 0, -1)}
    assert orders == {"ord-0000000000000001", "ord-0000000000000003"}
    assert dispatcher.counts["refused"] == 1 and dispatcher.counts["created"] == 2
    assert f"event {poisoned.event_id} refused by Redis, skipped" in caplog.text
