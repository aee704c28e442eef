"""The dispatch board's index (fw:orders:open) kept by the scripts that create and close orders,
and masks made by hand (a muted cell) beside the closed loop's, on a real redis-server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from firewatch.clock import FakeClock
from firewatch.engine.core import Engine
from firewatch.linkage import keys
from firewatch.linkage.consumer import MaskSync
from firewatch.linkage.model import QueryError, Resolution
from firewatch.linkage.service import Linkage
from firewatch.linkage.store import MaskOrigin
from firewatch.rules.model import Mask, MaskReason

from .conftest import T0, event, oid


def open_index(r: redis.Redis) -> list[tuple[str, float]]:
    return [(m.decode(), s) for m, s in r.zrange(keys.ORDERS_OPEN, 0, -1, withscores=True)]


def test_created_orders_of_every_team_are_on_the_board_until_closed(
    linkage: Linkage, redis_client: redis.Redis, clock: FakeClock
) -> None:
    linkage.consume([event(n=1, team="team-A")])
    clock.advance(minutes=1)
    linkage.consume([event(n=2, team="team-B"), event(n=3, team=None)])
    clock.advance(minutes=1)
    linkage.consume([event(n=4, team="team-A")])
    t0 = T0.timestamp()
    assert open_index(redis_client) == [
        (oid(1), t0),
        (oid(2), t0 + 60),
        (oid(3), t0 + 60),
        (oid(4), t0 + 120),
    ]
    # redelivered `opened` events add nothing
    linkage.consume([event(n=1, team="team-A"), event(n=4, team="team-A")])
    assert redis_client.zcard(keys.ORDERS_OPEN) == 4

    orders = linkage.store.board(limit=3)
    assert [o.id for o in orders] == [oid(4), oid(3), oid(2)]  # newest first
    assert orders[1].team is None  # an order of no team is on the board too

    linkage.ack(oid(4), by="team:team-A")
    linkage.arrive(oid(2), by="team:team-B")
    assert redis_client.zcard(keys.ORDERS_OPEN) == 4  # acknowledged, on scene: still open
    linkage.close(oid(4), Resolution.EXTINGUISHED, by="team:team-A")
    linkage.close(oid(3), Resolution.OTHER, by="cli")
    assert open_index(redis_client) == [(oid(1), t0), (oid(2), t0 + 60)]
    # a close repeated changes nothing, on the board either
    linkage.close(oid(4), Resolution.EXTINGUISHED, by="team:team-A")
    assert [o.id for o in linkage.store.board()] == [oid(2), oid(1)]


def test_an_order_created_before_the_index_is_left_off_the_board(
    linkage: Linkage, redis_client: redis.Redis
) -> None:
    linkage.consume([event(n=1, team="team-A"), event(n=2, team="team-A")])
    redis_client.zrem(keys.ORDERS_OPEN, oid(1))  # as the code before the index left it
    assert [o.id for o in linkage.store.board()] == [oid(2)]
    assert [o.id for o in linkage.store.open_orders("team-A")] == [oid(1), oid(2)]
    linkage.close(oid(1), Resolution.OTHER)  # closing it is fine: nothing to remove
    assert [o.id for o in linkage.store.open_orders("team-A")] == [oid(2)]


@pytest.mark.parametrize("limit", [0, 1001])
def test_the_board_is_bounded(linkage: Linkage, limit: int) -> None:
    with pytest.raises(QueryError, match=f"dispatch board: limit must be 1..1000, not {limit}"):
        linkage.store.board(limit)


def test_a_mask_made_by_hand_is_stored_with_who_made_it_and_reaches_an_engine(
    linkage: Linkage,
    redis_client: redis.Redis,
    clock: FakeClock,
    make_engine: Callable[..., Engine],
) -> None:
    store = linkage.store
    now = clock.now()
    mask = Mask(
        name="mute-c0-0-1775268000",
        reason=MaskReason.MUTED,
        polygon=[(118.80, 28.90), (118.81, 28.90), (118.81, 28.91), (118.80, 28.91)],
        start=now,
        end=now + timedelta(minutes=30),
    )
    origin = MaskOrigin(by="admin:alice", at=now, note="burning permit 17")
    assert store.add_mask(mask, origin)
    assert Mask.model_validate_json(redis_client.hget(keys.MASKS, mask.name) or b"") == mask
    assert store.masks_version() == 1
    assert store.mask_origins() == {mask.name: origin}
    # the same name again: nothing changes (no second version either)
    assert not store.add_mask(mask.model_copy(update={"reason": MaskReason.OTHER}), origin)
    assert store.masks() == [mask] and store.masks_version() == 1

    engine = make_engine()
    sync = MaskSync(store, engine)
    assert sync.sync() and [m.name for m in engine.masks] == [mask.name]

    assert store.remove_mask(mask.name)
    assert redis_client.hlen(keys.MASKS) == 0 and redis_client.hlen(keys.MASKS_BY) == 0
    assert store.masks_version() == 2
    assert sync.sync() and engine.masks == []
