"""Redis restarts and outages: no order or transition is lost, nothing is doubled."""

from __future__ import annotations

from collections.abc import Iterator

from redis.backoff import NoBackoff

from firewatch.clock import FakeClock
from firewatch.linkage.consumer import LinkageConsumer
from firewatch.linkage.model import OrderState, Resolution
from firewatch.linkage.service import Linkage
from firewatch.model import IncidentEvent
from firewatch.rules.model import RoutingRules

from ..redis_fixtures import RedisFactory
from .conftest import event, oid


def _state(linkage: Linkage, n: int) -> dict[str, object]:
    orders = linkage.store.get_many([oid(i) for i in range(1, n + 1)])
    return {
        "orders": [(o.id, o.state, o.acked_at, o.closed_at, o.resolution) for o in orders],
        "logs": [len(linkage.store.log(o.id)) for o in orders],
        "report": linkage.report(by=["team"]).as_dict(),
    }


def _work(linkage: Linkage, clock: FakeClock, first: int, last: int) -> None:
    linkage.consume([event(n=n) for n in range(first, last + 1)])
    clock.advance(minutes=5)
    for n in range(first, last + 1, 2):
        linkage.ack(oid(n))
    clock.advance(minutes=40)
    for n in range(first, last + 1, 4):
        linkage.close(oid(n), Resolution.EXTINGUISHED)


def test_sigkill_and_restart_lose_no_order_or_transition(
    redis_factory: RedisFactory, routing: RoutingRules, clock: FakeClock
) -> None:
    """The linkage state reloads whole after a crash of redis-server. SIGKILL keeps the kernel's
    page cache, so this is about the process; the fsync is checked in test_server.py."""
    server = redis_factory()  # appendonly, appendfsync always
    linkage = Linkage(server.client(), routing, clock)
    _work(linkage, clock, 1, 120)
    before = _state(linkage, 120)
    server.kill()  # SIGKILL mid-run: no chance to save anything more
    restarted = redis_factory(server.data_dir)
    linkage = Linkage(restarted.client(), routing, clock)
    assert _state(linkage, 120) == before
    _work(linkage, clock, 121, 200)  # the run goes on after the restart
    assert linkage.report(by=[]).rows[0].issued == 200
    restarted.stop()  # a clean SHUTDOWN too
    linkage = Linkage(redis_factory(server.data_dir).client(), routing, clock)
    state = _state(linkage, 200)
    assert state["orders"][:120] == before["orders"]
    assert sum(1 for o in state["orders"] if o[1] is OrderState.CLOSED) == 30 + 20  # type: ignore[index]


def test_while_redis_is_down_the_consumer_pauses_and_then_loses_nothing(
    redis_factory: RedisFactory, routing: RoutingRules, clock: FakeClock
) -> None:
    server = redis_factory()
    client = server.client(socket_timeout=2, retry=None)
    linkage = Linkage(client, routing, clock)
    pulled: list[int] = []
    pulled_at_each_retry: list[int] = []

    def batches() -> Iterator[list[IncidentEvent]]:
        for b in range(6):
            pulled.append(b)
            if b == 2:
                server.stop()  # Redis goes away while batch 2 is on its way
            yield [event(n=10 * b + i) for i in range(1, 11)]

    class Waits(NoBackoff):
        """No wait; at each retry, note how much input was taken."""

        def compute(self, failures: int) -> float:
            pulled_at_each_retry.append(len(pulled))
            if failures == 3:
                server.start()  # ... and comes back after three retries
            return 0.0

    consumer = LinkageConsumer(linkage, backoff=Waits())
    totals = consumer.run(batches())
    assert pulled_at_each_retry == [3, 3, 3]  # no new input was taken while Redis was down
    assert consumer.retries == 3
    assert (totals.created, totals.duplicates) == (60, 0)
    assert linkage.report(by=[]).rows[0].issued == 60
    assert len(client.keys("fw:order:*:log")) == 60


def test_a_batch_half_applied_before_an_outage_is_not_doubled(
    redis_factory: RedisFactory, routing: RoutingRules, clock: FakeClock
) -> None:
    server = redis_factory()
    linkage = Linkage(server.client(), routing, clock)
    batch = [event(n=n) for n in range(1, 21)]
    linkage.consume(batch[:13])  # as if the connection dropped after 13 of the 20 scripts ran
    consumer = LinkageConsumer(linkage, backoff=NoBackoff())
    counts = consumer.deliver(batch)  # the whole batch is delivered again
    assert (counts.created, counts.duplicates) == (7, 13)
    row = linkage.report(by=[]).rows[0]
    assert row.issued == 20 == row.dispatched
