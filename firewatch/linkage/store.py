"""Dispatch state in Redis: orders, their logs, notification streams and running aggregates.

The only module that talks to Redis for dispatch. Every change is one Lua script (scripts.py):
atomic and idempotent. Key names come from keys.py; the aggregate layout from aggregates.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis

from firewatch.linkage import aggregates, keys, scripts
from firewatch.linkage.model import (
    Action,
    DispatchError,
    InvalidTransition,
    LogEntry,
    Order,
    OrderNotFound,
    OrderState,
    Resolution,
)
from firewatch.model import EventKind, IncidentEvent, Severity
from firewatch.rules.model import Mask, RoutingRules

STREAM_MAXLEN = 100_000  # notifications kept per target stream (approximate trim)
CREATE_BATCH = 200  # orders created by one script call
_RANKS = {s.value: s.rank for s in Severity}
_CREATE_METRICS = {name: aggregates.INDEX[name] for name in ("issued", "dispatched")}
_LAYOUT = {
    "row": aggregates.ROW,
    "edges": list(aggregates.DURATION_EDGES),
    "metrics": {
        **{name: aggregates.INDEX[name] for name in aggregates.COUNTERS},
        **{d: aggregates.INDEX[f"{d}:0"] for d in aggregates.DURATIONS},
    },
}


def order_id(incident_id: str) -> str:
    """One order per incident, named after it: a redelivered `opened` event finds it again."""
    return "ord-" + incident_id.removeprefix("inc-")


def _epoch(at: datetime) -> str:
    return repr(round(at.timestamp(), 3))


def _dt(value: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None


@dataclass
class DispatchCounts:
    created: int = 0
    duplicates: int = 0  # `opened` events for incidents that already have an order
    renotified: int = 0
    incident_closed: int = 0
    unknown: int = 0  # updates for incidents this queue never dispatched


class DispatchStore:
    def __init__(self, client: redis.Redis, routing: RoutingRules) -> None:
        self.r: Any = client  # redis-py's return types are unions of its sync and async clients
        self.routing = routing
        self._create = client.register_script(scripts.CREATE)
        self._transition = client.register_script(scripts.TRANSITION)
        self._escalate = client.register_script(scripts.ESCALATE)
        self._incident = client.register_script(scripts.INCIDENT)

    # -- dispatch ---------------------------------------------------------------------------------
    def dispatch(self, events: Sequence[IncidentEvent], now: datetime) -> DispatchCounts:
        """Apply incident events in one pipelined round trip. Safe to repeat (at-least-once).

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
                self._create(args=[orjson.dumps(run)], client=pipe)
                kinds.append(EventKind.OPENED)
                run = []
            if e.event is EventKind.UPDATED:
                self._queue_severity(pipe, e, now)
            elif e.event is EventKind.CLOSED:
                self._queue_incident_closed(pipe, e, now)
            if e.event is not EventKind.OPENED:
                kinds.append(e.event)
        if run:
            self._create(args=[orjson.dumps(run)], client=pipe)
            kinds.append(EventKind.OPENED)
        counts = DispatchCounts()
        for kind, result in zip(kinds, pipe.execute(), strict=True):
            if kind is EventKind.OPENED:
                counts.created += sum(result)
                counts.duplicates += len(result) - sum(result)
            elif result == b"missing":
                counts.unknown += 1
            elif kind is EventKind.UPDATED:
                counts.renotified += result == b"ok"
            else:
                counts.incident_closed += result == b"ok"
        return counts

    def chain(self, e: IncidentEvent) -> list[str]:
        """The escalation chain of an incident's cell: `team:<t>`, `village:<v>`, ..."""
        names = _levels(e)
        chain = [f"{level}:{names[level]}" for level in self.routing.escalation if names[level]]
        return chain or [f"org:{self.routing.fallback}"]

    def targets(self, e: IncidentEvent, severity: Severity) -> list[str]:
        """Who else is told at `severity`: levels of the cell's chain, or `org:<name>`."""
        names = _levels(e)
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
        sla = self.routing.sla[e.severity]
        fields = {
            "id": oid,
            "incident_id": e.incident_id,
            "state": OrderState.PENDING.value,
            "severity": e.severity.value,
            "team": e.team or "",
            "grid_id": e.grid_id,
            "grid_name": e.grid_name or "",
            "village": e.village or "",
            "township": e.township or "",
            "district": e.district or "",
            "lat": repr(e.lat),
            "lon": repr(e.lon),
            "created_at": _epoch(now),
            "sla_deadline": _epoch(now + sla),
            "responder": chain[0],
            "level": "0",
            "escalations": "0",
            "chain": json.dumps(chain),
        }
        scopes = ["all"] + [
            f"{kind}:{name}"
            for kind, name in (("team", e.team), ("township", e.township), ("district", e.district))
            if name
        ]
        targets = [chain[0], *(t for t in self.targets(e, e.severity) if t != chain[0])]
        meta = {
            "row": aggregates.ROW,
            "metrics": _CREATE_METRICS,
            "scopes": scopes,
            "buckets": [keys.agg(b) for b in aggregates.buckets(now, self.routing.utc_offset)],
            "dispatched": chain[0].startswith("team:"),
            "streams": [keys.notify(t) for t in targets],
            "targets": targets,
            "maxlen": STREAM_MAXLEN,
            "message": _message("dispatch", oid, e, now),
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
            ],
            "f": [x for pair in fields.items() for x in pair],
            "m": meta,
        }

    def _queue_severity(self, pipe: Any, e: IncidentEvent, now: datetime) -> None:
        oid = order_id(e.incident_id)
        targets = []
        if self.routing.renotify_on_severity_rise:
            team = [f"team:{e.team}"] if e.team else []
            targets = list(dict.fromkeys([*team, *self.targets(e, e.severity)]))
        meta = {
            **_LAYOUT,
            "ranks": _RANKS,
            "streams": [keys.notify(t) for t in targets],
            "targets": targets,
            "maxlen": STREAM_MAXLEN,
            "message": _message("severity", oid, e, now),
        }
        self._incident(
            keys=[keys.order(oid), keys.order_log(oid)],
            args=[
                "severity",
                _epoch(now),
                e.severity.value,
                e.severity.rank,
                json.dumps(meta),
            ],
            client=pipe,
        )

    def _queue_incident_closed(self, pipe: Any, e: IncidentEvent, now: datetime) -> None:
        oid = order_id(e.incident_id)
        self._incident(
            keys=[keys.order(oid), keys.order_log(oid)],
            args=[
                "incident_closed",
                _epoch(now),
                e.severity.value,
                0,
                "{}",
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
    ) -> tuple[Order, bool]:
        """Apply ack / arrive / close; returns the order and whether anything changed.

        Raises OrderNotFound, or InvalidTransition (nothing changed) with the reason.
        """
        if action is Action.CLOSE and resolution is None:
            raise DispatchError(f"closing order {oid} needs an outcome: {', '.join(Resolution)}")
        team = self.r.hget(keys.order(oid), "team")
        status, state, detail = self._transition(
            keys=[
                keys.order(oid),
                keys.order_log(oid),
                keys.SLA,
                keys.team_open(team.decode()) if team else "",
            ],
            args=[
                action.value,
                _epoch(at),
                resolution.value if resolution else "",
                cause or "",
                note or "",
                json.dumps(_LAYOUT),
            ],
        )
        if status == b"missing":
            raise OrderNotFound(f"no dispatch order {oid!r}")
        if status == b"invalid":
            raise InvalidTransition(f"order {oid} ({state.decode()}): {detail.decode()}")
        return self.get(oid), status == b"ok"

    def escalate_due(self, now: datetime) -> list[tuple[str, str]]:
        """Escalate every pending order past its deadline; returns (order id, new responder)."""
        due = self.r.zrangebyscore(keys.SLA, "-inf", _epoch(now))
        if not due:
            return []
        look = self.r.pipeline(transaction=False)
        for raw in due:
            look.hmget(keys.order(raw.decode()), "severity", "escalations", "chain")
        pipe = self.r.pipeline(transaction=False)
        meta = json.dumps({**_LAYOUT, "maxlen": STREAM_MAXLEN, "prefix": keys.notify("")})
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
                keys=[keys.order(oid), keys.order_log(oid), keys.SLA],
                args=[_epoch(now), _epoch(nxt), meta],
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
        return _order(h)

    def get_many(self, oids: Iterable[str]) -> list[Order]:
        pipe = self.r.pipeline(transaction=False)
        for oid in oids:
            pipe.hgetall(keys.order(oid))
        return [_order(h) for h in pipe.execute() if h]

    def open_orders(self, team: str) -> list[Order]:
        ids = sorted(m.decode() for m in self.r.smembers(keys.team_open(team)))
        return sorted(self.get_many(ids), key=lambda o: o.created_at)

    def log(self, oid: str) -> list[LogEntry]:
        return [
            LogEntry(
                at=datetime.fromtimestamp(float(f[b"at"]), UTC),
                kind=f[b"kind"].decode(),
                detail=f[b"detail"].decode(),
            )
            for _, f in self.r.xrange(keys.order_log(oid))
        ]

    def inbox(self, target: str, consumer: str, count: int = 100) -> list[dict[str, str]]:
        """New notifications of a target through its consumer group, acknowledged on reading."""
        stream = keys.notify(target)
        try:
            self.r.xgroup_create(stream, keys.NOTIFY_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        got = self.r.xreadgroup(keys.NOTIFY_GROUP, consumer, {stream: ">"}, count=count)
        out = []
        for _, entries in got or []:
            for entry_id, f in entries:
                out.append({k.decode(): v.decode() for k, v in f.items()})
                self.r.xack(stream, keys.NOTIFY_GROUP, entry_id)
        return out

    # -- closed loop: suppression masks -----------------------------------------------------------
    def put_mask(self, mask: Mask) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.MASKS, mask.name, mask.model_dump_json())
        pipe.incr(keys.MASKS_VERSION)
        pipe.execute()

    def remove_mask(self, name: str) -> bool:
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(keys.MASKS, name)
        pipe.incr(keys.MASKS_VERSION)
        return bool(pipe.execute()[0])

    def masks(self) -> list[Mask]:
        return [Mask.model_validate_json(v) for _, v in sorted(self.r.hgetall(keys.MASKS).items())]

    def masks_version(self) -> int:
        return int(self.r.get(keys.MASKS_VERSION) or 0)


def _message(kind: str, oid: str, e: IncidentEvent, at: datetime) -> list[str]:
    text = (
        f"{e.severity.value} fire warning in {e.grid_name or e.grid_id} ({e.lat:.5f}, {e.lon:.5f})"
    )
    return [
        "kind", kind, "order", oid, "incident", e.incident_id, "severity", e.severity.value,
        "grid_id", e.grid_id, "lat", repr(e.lat), "lon", repr(e.lon), "at", _epoch(at),
        "text", text,
    ]  # fmt: skip


def _order(h: dict[bytes, bytes]) -> Order:
    s = {k.decode(): v.decode() for k, v in h.items()}

    def opt(name: str) -> str | None:
        return s.get(name) or None

    return Order(
        id=s["id"],
        incident_id=s["incident_id"],
        state=OrderState(s["state"]),
        severity=Severity(s["severity"]),
        team=opt("team"),
        grid_id=s["grid_id"],
        grid_name=opt("grid_name"),
        village=opt("village"),
        township=opt("township"),
        district=opt("district"),
        lat=float(s["lat"]),
        lon=float(s["lon"]),
        created_at=datetime.fromtimestamp(float(h[b"created_at"]), UTC),
        acked_at=_dt(h.get(b"acked_at")),
        on_scene_at=_dt(h.get(b"on_scene_at")),
        closed_at=_dt(h.get(b"closed_at")),
        resolution=Resolution(s["resolution"]) if s.get("resolution") else None,
        cause=opt("cause"),
        note=opt("note"),
        responder=s["responder"],
        level=int(s["level"]),
        escalations=int(s["escalations"]),
        sla_deadline=_dt(h.get(b"sla_deadline")),
        incident_closed_at=_dt(h.get(b"incident_closed_at")),
    )


def _levels(e: IncidentEvent) -> dict[str, str | None]:
    return {"team": e.team, "village": e.village, "township": e.township, "district": e.district}
