"""Ack, arrive and close: one Lua script (scripts.TRANSITION), whose call is built and whose reply
is read here, for the store's client (the CLI, the dispatcher, tests) and the API's asyncio
client alike: one rule, two ways of sending it.

A call is one round trip: the script checks the order exists (and, for a team's token, that it
is the team's), applies the transition with its log, aggregates and change-feed entries, and
answers with the order as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aredis

from firewatch.linkage import codec, keys, scripts
from firewatch.linkage.model import (
    Action,
    DispatchError,
    InvalidTransition,
    Order,
    OrderNotFound,
    Resolution,
)
from firewatch.rules.model import Mask

MAX_ACTOR = 200  # characters of who did a transition


def check_actor(by: str, what: str) -> None:
    """Who did something to `what` (an order, a maintenance order): 1 to MAX_ACTOR printable
    characters, else DispatchError naming it."""
    if not (by.strip() and len(by) <= MAX_ACTOR and by.isprintable()):
        raise DispatchError(
            f"{what}: who did it must be 1 to {MAX_ACTOR} printable characters, not {by!r}"
        )


class OrderForbidden(DispatchError):
    """The order belongs to another team than the one that asked (nothing was changed)."""

    def __init__(self, message: str, owner: str) -> None:
        super().__init__(message)
        self.owner = owner  # the order's team ('' when it has none)


@dataclass(frozen=True)
class Transition:
    """One ack / arrive / close of order `oid` at `at`.

    `by` names who did it (`team:<t>`, `cli`, `admin:<name>`): on the log entries and the change
    feed. `team` is the order's team, whose open-orders set a close updates; with `only_team` the
    script refuses the order unless it is that team's (a team's token acting on another team's
    order changes nothing). A close with a `mask` (the closed loop, decided by the caller) also
    writes the mask and records its name on the order, in the same script.
    """

    oid: str
    action: Action
    at: datetime
    resolution: Resolution | None = None
    cause: str | None = None
    note: str | None = None
    mask: Mask | None = None
    by: str | None = None
    team: str | None = None
    only_team: bool = False

    def __post_init__(self) -> None:
        oid, by = self.oid, self.by
        if self.action is Action.CLOSE and self.resolution is None:
            raise DispatchError(f"closing order {oid} needs an outcome: {', '.join(Resolution)}")
        if self.mask is not None and self.action is not Action.CLOSE:
            raise DispatchError(
                f"order {oid}: only a close makes a suppression mask, not {self.action}"
            )
        if by is not None:
            check_actor(by, f"order {oid}")
        if self.only_team and not self.team:
            raise DispatchError(f"order {oid}: only_team needs the team")

    @classmethod
    def of_team(
        cls, oid: str, action: Action, at: datetime, by: str | None, team: str
    ) -> Transition:
        """An ack or arrive by `team`, refused unless the order is the team's."""
        return cls(oid, action, at, by=by, team=team, only_team=True)

    def keys(self) -> list[str]:
        oid = self.oid
        return [
            keys.order(oid),
            keys.order_log(oid),
            keys.SLA,
            keys.team_open(self.team) if self.team else "",
            keys.MASKS,
            keys.MASKS_VERSION,
            keys.FEED,
            keys.ORDERS_OPEN,
        ]

    def args(self, meta: str) -> list[str]:
        """The script's arguments; `meta`: the store's layout, as JSON (DispatchStore.meta_json)."""
        mask = self.mask
        return [
            self.action.value,
            codec.epoch(self.at),
            self.resolution.value if self.resolution else "",
            self.cause or "",
            self.note or "",
            meta,
            mask.name if mask else "",
            mask.model_dump_json() if mask else "",
            self.by or "",
            (self.team or "") if self.only_team else "",
        ]

    def outcome(self, reply: list[Any]) -> tuple[Order, bool]:
        """The order after the script's `reply`, and whether anything changed. Raises
        OrderNotFound, OrderForbidden, or InvalidTransition (nothing changed) with the reason."""
        status, state, detail = reply[0], reply[1].decode(), reply[2].decode()
        oid = self.oid
        if status == b"missing":
            raise OrderNotFound(f"no dispatch order {oid!r}")
        if status == b"forbidden":
            raise OrderForbidden(
                f"order {oid} belongs to team {detail or '(none)'}, not {self.team}", detail
            )
        if status == b"invalid":
            raise InvalidTransition(f"order {oid} ({state}): {detail}")
        flat = reply[3]
        return codec.order(dict(zip(flat[::2], flat[1::2], strict=True))), status == b"ok"


class AsyncTransitions:
    """The same script sent with an asyncio client: the API's ack and arrive, without a thread
    per request (benchmarks/README.md, API)."""

    def __init__(self, client: aredis.Redis, meta_json: str) -> None:
        self.meta_json = meta_json
        self._client: Any = client  # redis-py's return types are unions of str and bytes
        self._transition = client.register_script(scripts.TRANSITION)

    async def move(
        self, oid: str, action: Action, at: datetime, by: str | None, team: str | None
    ) -> tuple[Order, bool]:
        """An ack or arrive: with `team`, of that team's order only (one round trip); without,
        of any order (its team read first), as DispatchStore.transition does."""
        if team is not None:
            return await self.apply(Transition.of_team(oid, action, at, by, team))
        owner = await self._client.hget(keys.order(oid), "team")
        return await self.apply(
            Transition(oid, action, at, by=by, team=owner.decode() if owner else None)
        )

    async def apply(self, t: Transition) -> tuple[Order, bool]:
        return t.outcome(await self._transition(keys=t.keys(), args=t.args(self.meta_json)))
