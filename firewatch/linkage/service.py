"""The linkage queue: incident events in, dispatch orders out, tracked until closed.

Wall-clock time comes from an injected Clock, so escalation is tested in simulated time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime

import redis

from firewatch.clock import Clock
from firewatch.linkage.maintenance import Maintenance
from firewatch.linkage.model import Action, DispatchError, MaintenanceOrder, Order, Resolution
from firewatch.linkage.report import Report, build_report
from firewatch.linkage.store import DispatchCounts, DispatchStore
from firewatch.linkage.transitions import OrderForbidden, Transition
from firewatch.linkage.uptime import health_rows
from firewatch.model import DeviceEvent, Event, IncidentEvent
from firewatch.rules.model import Circle, Mask, MaskReason, RoutingRules


class Linkage:
    def __init__(self, client: redis.Redis, routing: RoutingRules, clock: Clock) -> None:
        self.store = DispatchStore(client, routing)
        self.maintenance = Maintenance(client, routing)
        self.routing = routing
        self.clock = clock

    def consume(self, events: Sequence[Event]) -> DispatchCounts:
        """Dispatch `opened`, re-notify on a severity rise, note `closed` on the order, and
        record every event with its incident; device events open and resolve maintenance
        orders (maintenance.py). Idempotent."""
        now = self.clock.now()
        incidents = [e for e in events if isinstance(e, IncidentEvent)]
        devices = [e for e in events if isinstance(e, DeviceEvent)]
        counts = self.store.dispatch(incidents, now) if incidents else DispatchCounts()
        if devices:
            done = self.maintenance.apply(devices, now)
            counts.maintenance_opened += done.opened
            counts.maintenance_resolved += done.resolved
            counts.devices_new += done.devices
        return counts

    def escalate(self) -> list[tuple[str, str]]:
        return self.store.escalate_due(self.clock.now())

    def ack(
        self, order_id: str, by: str | None = None, team: str | None = None
    ) -> tuple[Order, bool]:
        """Acknowledge; `by` names who did it (`team:<t>`, `cli`, `admin:<name>`), recorded on
        the order's log and in the change feed. With `team`, only that team's order
        (OrderForbidden for another's, nothing changed)."""
        return self._move(order_id, Action.ACK, by, team)

    def ack_maintenance(
        self, order_id: str, by: str = "cli", team: str | None = None
    ) -> tuple[MaintenanceOrder, bool]:
        """Acknowledge an open maintenance order (maintenance.py): kept on it and in the feed."""
        return self.maintenance.ack(order_id, by, self.clock.now(), team)

    def arrive(
        self, order_id: str, by: str | None = None, team: str | None = None
    ) -> tuple[Order, bool]:
        return self._move(order_id, Action.ARRIVE, by, team)

    def _move(
        self, order_id: str, action: Action, by: str | None, team: str | None
    ) -> tuple[Order, bool]:
        now = self.clock.now()
        if team is None:
            return self.store.transition(order_id, action, now, by=by)
        return self.store.apply(Transition.of_team(order_id, action, now, by, team))

    def close(
        self,
        order_id: str,
        resolution: Resolution,
        cause: str | None = None,
        note: str | None = None,
        by: str | None = None,
        team: str | None = None,
    ) -> tuple[Order, bool]:
        """Close an order; a false alarm with a closed-loop cause becomes a suppression mask.

        The close and the mask are written by one script: a close retried after a lost reply,
        or repeated on an order closed before closures made their mask atomically, gets its
        mask once; a mask removed since (`remove_mask`) is not made again. `by` and `team`: as
        for ack."""
        now = self.clock.now()
        mask = None
        owner = team
        if self.makes_mask(resolution, cause) or team is None:
            before = self.store.get(order_id)
            if team is not None and before.team != team:
                raise OrderForbidden(
                    f"order {order_id} belongs to team {before.team or '(none)'}, not {team}",
                    before.team or "",
                )
            owner = before.team
            if self.makes_mask(resolution, cause):
                mask = self.mask_for(before, before.closed_at or now)
        return self.store.apply(
            Transition(
                order_id,
                Action.CLOSE,
                now,
                resolution,
                cause,
                note,
                mask,
                by,
                team=owner,
                only_team=team is not None,
            )
        )

    def makes_mask(self, resolution: Resolution, cause: str | None) -> bool:
        """The closed loop: a false alarm with one of routing.closed_loop.causes."""
        loop = self.routing.closed_loop
        return loop.enabled and resolution is Resolution.FALSE_ALARM and cause in loop.causes

    def mask_for(self, order: Order, closed_at: datetime) -> Mask:
        """The suppression mask of an order closed at `closed_at`: a circle from then on."""
        loop = self.routing.closed_loop
        return Mask(
            name=f"false-alarm-{order.id}",
            reason=MaskReason.KNOWN_HEAT_SOURCE,
            circle=Circle(lat=order.lat, lon=order.lon, radius_m=loop.radius_m),
            start=closed_at,
            end=closed_at + loop.ttl,
        )

    def remove_mask(self, name: str) -> None:
        if not self.store.remove_mask(name):
            raise DispatchError(f"no suppression mask named {name!r}")

    def report(
        self,
        first: date | None = None,
        last: date | None = None,
        by: Sequence[str] = ("township", "district"),
    ) -> Report:
        report = build_report(self.store.r, first, last, by)
        levels = [b for b in by if b in ("township", "district")]
        rows = health_rows(
            self.store.r, first, last, levels, self.clock.now(), self.routing.utc_offset
        )
        return dataclasses.replace(report, devices=rows)
