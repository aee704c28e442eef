"""Dispatch state in Redis: orders, their logs, notification streams, running aggregates,
incident records and the change feed.

The only module that talks to Redis for dispatch (reading notifications is in inbox.py, listing
incidents in incidents.py, reading the change feed in feed.py). Every change is one Lua script
(scripts.py): atomic and idempotent, and in the change feed. Key names come from keys.py; the
aggregate layout from aggregates.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
from pydantic import BaseModel, ConfigDict

from firewatch.linkage import aggregates, codec, feed, inbox, incidents, keys, scripts
from firewatch.linkage.inbox import Notification
from firewatch.linkage.model import (
    Action,
    IncidentNotFound,
    IncidentRecord,
    IncidentStatus,
    LogEntry,
    Order,
    OrderNotFound,
    OrderState,
    QueryError,
    Resolution,
)
from firewatch.linkage.transitions import Transition
from firewatch.model import EventKind, IncidentEvent, Severity
from firewatch.rules.model import Mask, RoutingRules

STREAM_MAXLEN = 100_000  # notifications kept per target stream (approximate trim)
CREATE_BATCH = 200  # orders created by one script call
MAX_BOARD = 1000  # open orders the dispatch board returns at most
_RANKS = {s.value: s.rank for s in Severity}
_LAYOUT = {
    "rows": {str(n): width for n, width in aggregates.ROWS.items()},
    "edges": list(aggregates.DURATION_EDGES),
    "metrics": {
        **{name: aggregates.INDEX[name] for name in aggregates.COUNTERS},
        **{d: aggregates.INDEX[f"{d}:0"] for d in aggregates.DURATIONS},
    },
}


class MaskOrigin(BaseModel):
    """Who made a mask by hand, when, and why (keys.MASKS_BY)."""

    model_config = ConfigDict(frozen=True)

    by: str  # `admin:<token name>`, as an order's log names who acted
    at: datetime
    note: str | None = None


def order_id(incident_id: str) -> str:
    """One order per incident, named after it: a redelivered `opened` event finds it again."""
    return "ord-" + incident_id.removeprefix("inc-")


@dataclass
class DispatchCounts:
    created: int = 0
    duplicates: int = 0  # `opened` events for incidents that already have an order
    renotified: int = 0
    reached: int = 0  # teams told that a fire spread into their cells (one each per order)
    incident_closed: int = 0
    unknown: int = 0  # updates for incidents this queue never dispatched
    recorded: int = 0  # incident events recorded (not seen before)
    maintenance_opened: int = 0  # device outages and blind cells (maintenance.py)
    maintenance_resolved: int = 0
    devices_new: int = 0  # devices first heard, registered


class DispatchStore:
    def __init__(
        self, client: redis.Redis, routing: RoutingRules, feed_maxlen: int = feed.FEED_MAXLEN
    ) -> None:
        self.r: Any = client  # redis-py's return types are unions of its sync and async clients
        self.routing = routing
        self.feed_maxlen = feed_maxlen  # entries the change feed keeps (approximately)
        self.meta = {**_LAYOUT, "feed_maxlen": feed_maxlen}  # what every script is told
        self.meta_json = json.dumps(self.meta)  # encoded once: every transition sends it
        self._create = client.register_script(scripts.CREATE)
        self._transition = client.register_script(scripts.TRANSITION)
        self._escalate = client.register_script(scripts.ESCALATE)
        self._incident = client.register_script(scripts.INCIDENT)
        self._add_mask = client.register_script(scripts.ADD_MASK)

    # -- dispatch ---------------------------------------------------------------------------------
    def dispatch(self, events: Sequence[IncidentEvent], now: datetime) -> DispatchCounts:
        """Apply incident events in one pipelined round trip. Safe to repeat (at-least-once).

        Every event is recorded with its incident (incidents.py) by the script that acts on it.
        Runs of `opened` events are created by one script call each (CREATE_BATCH at most);
        the order of events is kept, so an update follows the creation of its order."""
        pipe = self.r.pipeline(transaction=False)
        kinds: list[EventKind] = []
        run: list[dict[str, Any]] = []
        for e in events:
            if e.event is EventKind.OPENED:
                run.append(self._create_item(e, now))
                if len(run) < CREATE_BATCH:
                    continue
            if run:
                self._queue_create(pipe, run)
                kinds.append(EventKind.OPENED)
                run = []
            if e.event is not EventKind.OPENED:
                self._queue_incident(pipe, e, now)
                kinds.append(e.event)
        if run:
            self._queue_create(pipe, run)
            kinds.append(EventKind.OPENED)
        counts = DispatchCounts()
        for kind, result in zip(kinds, pipe.execute(), strict=True):
            if kind is EventKind.OPENED:
                counts.created += sum(created for created, _ in result)
                counts.duplicates += sum(1 - created for created, _ in result)
                counts.recorded += sum(recorded for _, recorded in result)
                continue
            status, recorded, told = result
            counts.recorded += recorded
            counts.reached += told
            if status == b"missing":
                counts.unknown += 1
            elif kind is EventKind.UPDATED:
                counts.renotified += status == b"ok"
            else:
                counts.incident_closed += status == b"ok"
        return counts

    def chain(self, e: IncidentEvent) -> list[str]:
        """The escalation chain of an incident's cell: `team:<t>`, `village:<v>`, ..."""
        names = codec.levels(e)
        chain = [f"{level}:{names[level]}" for level in self.routing.escalation if names[level]]
        return chain or [f"org:{self.routing.fallback}"]

    def targets(self, e: IncidentEvent, severity: Severity) -> list[str]:
        """Who else is told at `severity`: levels of the cell's chain, or `org:<name>`."""
        names = codec.levels(e)
        out = []
        for name in self.routing.notify.get(severity, []):
            if name in names:
                if names[name]:
                    out.append(f"{name}:{names[name]}")
            else:
                out.append(f"org:{name}")
        return out

    def _create_item(self, e: IncidentEvent, now: datetime) -> dict[str, Any]:
        """One order of a CREATE call: its keys, its hash fields, and what the script needs."""
        oid = order_id(e.incident_id)
        chain = self.chain(e)
        fields = codec.order_fields(oid, e, chain, now, now + self.routing.sla[e.severity])
        scopes = ["all"] + [
            f"{kind}:{name}"
            for kind, name in (("team", e.team), ("township", e.township), ("district", e.district))
            if name
        ]
        targets = [chain[0], *(t for t in self.targets(e, e.severity) if t != chain[0])]
        bumps = [aggregates.INDEX["issued"]]
        if chain[0].startswith("team:"):
            bumps.append(aggregates.INDEX["dispatched"])
        bumps.append(aggregates.duration_index("to_dispatch", (now - e.first_seen).total_seconds()))
        layout = aggregates.LAYOUT
        meta = {
            "scopes": scopes,
            "layout": str(layout),
            "buckets": [
                keys.agg(b, layout) for b in aggregates.buckets(now, self.routing.utc_offset)
            ],
            "rows": _LAYOUT["rows"],
            "bumps": bumps,
            "streams": [keys.notify(t) for t in targets],
            "targets": targets,
            "maxlen": STREAM_MAXLEN,
            "message": codec.message("dispatch", oid, e, now),
        }
        team_key = keys.team_open(e.team) if e.team else ""
        return {
            "k": [
                keys.incident(e.incident_id),
                keys.order(oid),
                keys.order_log(oid),
                keys.ORDERS_BY_CREATED,
                keys.SLA,
                team_key,
                keys.AGG_SLOTS,
                keys.AGG_LAYOUTS,
                keys.ORDERS_OPEN,
            ],
            "f": [x for pair in fields.items() for x in pair],
            "m": meta,
            "r": incidents.record_item(e),
        }

    def _queue_create(self, pipe: Any, run: list[dict[str, Any]]) -> None:
        self._create(
            args=[orjson.dumps(run), keys.FEED, self.feed_maxlen, incidents.INDEXES_JSON],
            client=pipe,
        )

    def _queue_incident(self, pipe: Any, e: IncidentEvent, now: datetime) -> None:
        """An `updated` event (a severity rise re-notifies) or a `closed` one (noted on the
        order), recorded with its incident in the same script."""
        oid = order_id(e.incident_id)
        meta: dict[str, Any] = dict(self.meta)
        updated = e.event is EventKind.UPDATED
        if updated:
            targets = []
            if self.routing.renotify_on_severity_rise:
                team = [f"team:{e.team}"] if e.team else []
                targets = list(dict.fromkeys([*team, *self.targets(e, e.severity)]))
            reached = [f"team:{t}" for t in e.teams if t != e.team]
            meta |= {
                "ranks": _RANKS,
                "streams": [keys.notify(t) for t in targets],
                "targets": targets,
                "maxlen": STREAM_MAXLEN,
                "message": codec.message("severity", oid, e, now),
                "reached": reached,
                "reached_streams": [keys.notify(t) for t in reached],
                "reached_message": codec.message("reached", oid, e, now),
            }
        self._incident(
            keys=[keys.order(oid), keys.order_log(oid), keys.FEED],
            args=[
                "severity" if updated else "incident_closed",
                codec.epoch(now),
                e.severity.value,
                e.severity.rank if updated else 0,
                json.dumps(meta),
                orjson.dumps(incidents.record_item(e)),
                incidents.INDEXES_JSON,
            ],
            client=pipe,
        )

    # -- field teams ------------------------------------------------------------------------------
    def transition(
        self,
        oid: str,
        action: Action,
        at: datetime,
        resolution: Resolution | None = None,
        cause: str | None = None,
        note: str | None = None,
        mask: Mask | None = None,
        by: str | None = None,
    ) -> tuple[Order, bool]:
        """Apply ack / arrive / close (transitions.Transition says what each argument does);
        returns the order and whether anything changed. Raises OrderNotFound, or
        InvalidTransition (nothing changed) with the reason."""
        team = self.r.hget(keys.order(oid), "team")
        return self.apply(
            Transition(
                oid,
                action,
                at,
                resolution,
                cause,
                note,
                mask,
                by,
                team=team.decode() if team else None,
            )
        )

    def apply(self, t: Transition) -> tuple[Order, bool]:
        """One transition, one round trip (the API's asyncio client sends the same call)."""
        return t.outcome(self._transition(keys=t.keys(), args=t.args(self.meta_json)))

    def escalate_due(self, now: datetime) -> list[tuple[str, str]]:
        """Escalate every pending order past its deadline; returns (order id, new responder)."""
        due = self.r.zrangebyscore(keys.SLA, "-inf", codec.epoch(now))
        if not due:
            return []
        look = self.r.pipeline(transaction=False)
        for raw in due:
            look.hmget(keys.order(raw.decode()), "severity", "escalations", "chain")
        pipe = self.r.pipeline(transaction=False)
        meta = json.dumps({**self.meta, "maxlen": STREAM_MAXLEN, "prefix": keys.notify("")})
        queued = []
        for raw, (sev, done, chain) in zip(due, look.execute(), strict=True):
            oid = raw.decode()
            if sev is None:
                continue  # no such order hash: nothing to escalate
            queued.append(oid)
            nxt = now + self.next_interval(
                Severity(sev.decode()), int(done), len(json.loads(chain))
            )
            self._escalate(
                keys=[keys.order(oid), keys.order_log(oid), keys.SLA, keys.FEED],
                args=[codec.epoch(now), codec.epoch(nxt), meta],
                client=pipe,
            )
        return [(oid, t.decode()) for oid, t in zip(queued, pipe.execute(), strict=True) if t]

    def next_deadline(self) -> datetime | None:
        """The earliest SLA deadline of a pending order (when escalation has work next)."""
        first = self.r.zrange(keys.SLA, 0, 0, withscores=True)
        return datetime.fromtimestamp(first[0][1], UTC) if first else None

    def next_interval(self, severity: Severity, escalations: int, chain: int) -> timedelta:
        """Time to the next escalation after escalation number `escalations + 1`: the SLA while
        climbing the chain, then doubling at the top, up to routing.top_renotify_max."""
        sla = self.routing.sla[severity]
        beyond_top = min(max(0, escalations + 1 - (chain - 1)), 30)  # 2**30 SLAs: capped anyway
        return min(sla * (1 << beyond_top), max(sla, self.routing.top_renotify_max))

    # -- reading ----------------------------------------------------------------------------------
    def get(self, oid: str) -> Order:
        h = self.r.hgetall(keys.order(oid))
        if not h:
            raise OrderNotFound(f"no dispatch order {oid!r}")
        return codec.order(h)

    def get_many(self, oids: Iterable[str]) -> list[Order]:
        pipe = self.r.pipeline(transaction=False)
        for oid in oids:
            pipe.hgetall(keys.order(oid))
        return [codec.order(h) for h in pipe.execute() if h]

    def open_orders(self, team: str) -> list[Order]:
        ids = sorted(m.decode() for m in self.r.smembers(keys.team_open(team)))
        return sorted(self.get_many(ids), key=lambda o: o.created_at)

    def board(self, limit: int = 200) -> list[Order]:
        """The dispatch board: every team's open orders (and those of no team), newest first,
        at most `limit` (1..MAX_BOARD) of them. Costs one index read and `limit` hash reads.
        Orders created before the index (keys.ORDERS_OPEN) existed are not on it; their team's
        `open_orders` still lists them."""
        if not 1 <= limit <= MAX_BOARD:
            raise QueryError(f"dispatch board: limit must be 1..{MAX_BOARD}, not {limit}")
        ids = self.r.zrevrange(keys.ORDERS_OPEN, 0, limit - 1)
        orders = self.get_many(m.decode() for m in ids)
        return [o for o in orders if o.state is not OrderState.CLOSED]  # closed meanwhile

    def log(self, oid: str) -> list[LogEntry]:
        return [
            LogEntry(
                at=datetime.fromtimestamp(float(f[b"at"]), UTC),
                kind=f[b"kind"].decode(),
                detail=f[b"detail"].decode(),
                by=f[b"by"].decode() if b"by" in f else None,
            )
            for _, f in self.r.xrange(keys.order_log(oid))
        ]

    # -- incidents and the change feed -----------------------------------------------------------
    def incidents(
        self,
        status: IncidentStatus | None = None,
        severity: Severity | None = None,
        team: str | None = None,
        village: str | None = None,
        township: str | None = None,
        district: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[IncidentRecord], str | None]:
        """A page of incidents, newest first by first_seen (since/until bound it), and the
        cursor of the next page (None at the end). Bounded cost: incidents.py."""
        q = incidents.Query(status, severity, team, village, township, district, since, until)
        return incidents.query(self.r, q, limit, cursor)

    def incident(self, incident_id: str) -> IncidentRecord:
        """An incident's record with its events, its order and the order's log."""
        record, oid = incidents.get(self.r, incident_id)
        if record is None:
            why = f"; its order {oid} was dispatched before incidents were recorded" if oid else ""
            raise IncidentNotFound(f"no incident {incident_id!r}{why}")
        oid = record.order_id or oid
        orders = self.get_many([oid]) if oid else []
        log = self.log(orders[0].id) if orders else []
        return record.model_copy(update={"order": orders[0] if orders else None, "order_log": log})

    def feed_since(
        self, last_id: str | None, count: int = 100, block: timedelta | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """Change feed entries after `last_id` (exclusive; None: from the start), oldest first:
        (entry id, feed.FIELDS). `block`: wait that long for one. FeedGap: reload (feed.py)."""
        return feed.since(self.r, last_id, count, block, self.feed_maxlen)

    def feed_last_id(self) -> str:
        """The newest change feed entry's id ("0-0" when empty): where "from now on" starts."""
        return feed.last_id(self.r)

    def inbox(
        self,
        target: str,
        consumer: str,
        count: int = 100,
        min_idle: timedelta = inbox.MIN_IDLE,
    ) -> list[Notification]:
        """Notifications of a target not yet acknowledged: `consumer`'s pending ones, others'
        pending longer than min_idle, then new ones. Acknowledge them with `ack_inbox` once they
        are handed over; until then they are delivered again (inbox.py)."""
        return inbox.read(self.r, target, consumer, count, min_idle)

    def ack_inbox(self, target: str, ids: Sequence[str]) -> int:
        return inbox.ack(self.r, target, ids)

    # -- suppression masks: the closed loop's (made by TRANSITION with the close), muted cells --
    def add_mask(self, mask: Mask, origin: MaskOrigin) -> bool:
        """Store a mask made by hand (a muted cell) with who made it, and bump the masks version
        so every engine applies it (MaskSync, the dispatcher's MaskPublisher). False, and nothing
        changed, when a mask of that name exists."""
        return bool(
            self._add_mask(
                keys=[keys.MASKS, keys.MASKS_VERSION, keys.MASKS_BY],
                args=[mask.name, mask.model_dump_json(exclude_none=True), origin.model_dump_json()],
            )
        )

    def remove_mask(self, name: str) -> bool:
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(keys.MASKS, name)
        pipe.hdel(keys.MASKS_BY, name)
        pipe.incr(keys.MASKS_VERSION)
        return bool(pipe.execute()[0])

    def mask_origins(self) -> dict[str, MaskOrigin]:
        """Who made each mask made by hand (add_mask), by mask name."""
        got = self.r.hgetall(keys.MASKS_BY)
        return {k.decode(): MaskOrigin.model_validate_json(v) for k, v in got.items()}

    def masks(self) -> list[Mask]:
        return [Mask.model_validate_json(v) for _, v in sorted(self.r.hgetall(keys.MASKS).items())]

    def masks_version(self) -> int:
        return int(self.r.get(keys.MASKS_VERSION) or 0)
