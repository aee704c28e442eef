"""Several dispatcher processes on one Redis: each escalation step happens exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import redis

from firewatch.clock import FakeClock
from firewatch.linkage.server import RedisProcess
from firewatch.linkage.service import Linkage
from firewatch.rules.model import RoutingRules

from .conftest import T0, event, oid

ORDERS = 300
DISPATCHERS = 4


class ReadsThenWaits(redis.Redis):
    """A dispatcher's own connection that, once it has read the orders due, waits until every
    other dispatcher has read them too: all of them then try to escalate the same orders."""

    def __init__(self, barrier: threading.Barrier, **kw: Any) -> None:
        super().__init__(**kw)
        self.barrier = barrier

    def zrangebyscore(self, *args: Any, **kw: Any) -> Any:
        due = super().zrangebyscore(*args, **kw)
        self.barrier.wait(timeout=10)
        return due


def _race(dispatchers: list[Linkage]) -> list[list[tuple[str, str]]]:
    """Every dispatcher runs escalate() at once, each on its own thread."""
    results: list[list[tuple[str, str]]] = [[] for _ in dispatchers]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = dispatchers[i].escalate()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(dispatchers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_dispatchers_racing_escalate_escalate_each_order_once_per_step(
    redis_session: RedisProcess, redis_client: redis.Redis, routing: RoutingRules
) -> None:
    barrier = threading.Barrier(DISPATCHERS)
    clocks = [FakeClock(T0) for _ in range(DISPATCHERS)]
    clients = [
        ReadsThenWaits(barrier, unix_socket_path=str(redis_session.socket))
        for _ in range(DISPATCHERS)
    ]
    dispatchers = [Linkage(c, routing, k) for c, k in zip(clients, clocks, strict=True)]
    watch = Linkage(redis_client, routing, clocks[0])
    all_orders = [oid(n) for n in range(1, ORDERS + 1)]
    try:
        watch.consume([event(n=n) for n in range(1, ORDERS + 1)])
        # 11, 21 and 31 min: past the 10-min SLA of each level (team, village, township)
        for step, minutes in enumerate((11, 21, 31), 1):
            for clock in clocks:
                clock.set(T0 + timedelta(minutes=minutes))
            results = _race(dispatchers)
            done = Counter(order for result in results for order, _ in result)
            assert sorted(done) == all_orders
            assert set(done.values()) == {1}, f"step {step}: orders escalated more than once"
            orders = watch.store.get_many(all_orders)
            assert {o.escalations for o in orders} == {step}
            logs = [watch.store.log(o) for o in all_orders]
            assert {sum(e.kind == "escalated" for e in log) for log in logs} == {step}
            row = watch.report(by=[]).rows[0]
            assert (row.escalations, row.escalated) == (step * ORDERS, ORDERS)
        assert {o.responder for o in orders} == {"district:D1"}
    finally:
        for c in clients:
            c.close()
