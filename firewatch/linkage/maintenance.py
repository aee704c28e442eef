"""Maintenance orders: device health (engine/health.py) in the linkage queue, never fire warnings.

A `device_down` event opens a maintenance order for the device's outage, a `cell_blind` one for the
cell no device watches any more; `device_up` and `cell_watched` resolve them. Each is routed to the
cell's chain by routing.maintenance (the team, by default; for a blind cell the township too),
told again when it is over, and has a change feed entry (kind `maintenance`). `device_new`
registers the device (keys.DEVICES) and counts it on the day it was first heard, for the report's
uptime. Every event is applied by one Lua script call, atomically and idempotently: a redelivered
event changes nothing (an order exists for its id; the end of an outage finds no open order; a
device is registered once). Maintenance orders are not counted in the dispatch aggregates, so the
response and closure rates stay those of fire warnings.

A team acknowledges an open order ("someone is on it": `ack`, ACK_SCRIPT): who and when are kept on
the order and go to the change feed; a team only its own, never a resolved one; a second ack
changes nothing. It stays open until the device (or a watcher of the cell) reports again: the
records, not a person, say it is fixed.

The script also keeps the per-day counters the report's device figures are read from (uptime.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from firewatch.linkage import codec, keys
from firewatch.linkage.feed import FEED_MAXLEN
from firewatch.linkage.model import (
    InvalidTransition,
    MaintenanceOrder,
    OrderNotFound,
)
from firewatch.linkage.scripts import PRELUDE
from firewatch.linkage.transitions import OrderForbidden, check_actor
from firewatch.model import DeviceEvent, DeviceEventKind
from firewatch.rules.model import RoutingRules

DAY_S = 86_400
STREAM_MAXLEN = 100_000  # as the dispatch notifications (store.STREAM_MAXLEN)
_STARTS = {DeviceEventKind.DEVICE_DOWN: "device", DeviceEventKind.CELL_BLIND: "cell"}
_ENDS = {DeviceEventKind.DEVICE_UP: "device", DeviceEventKind.CELL_WATCHED: "cell"}
_COUNTED = {"device": ("downs", "down_s"), "cell": ("blinds", "blind_s")}

# ARGV[1]: a JSON array of items {kind, subject_key, order_key, f (hash fields, for a start),
# at (epoch s of the event), event_id, scopes, streams, message, device + registry (device_new)};
# ARGV[2..]: feed key, feed maxlen, the report's UTC offset (s), the health key prefix, the open
# orders zset, the device registry hash, the days zset, the maintenance key prefix, the
# notification streams' maxlen. Returns per item: 1 (changed) or 0 (nothing to do).
MAINTAIN = (
    PRELUDE
    + r"""
local FEED, FEED_MAXLEN, OFFSET = ARGV[2], ARGV[3], tonumber(ARGV[4])
local HEALTH, OPEN, REGISTRY, DAYS, MAINT = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local MAXLEN = ARGV[10]
local function day(t) return math.floor((t + OFFSET) / 86400) end
local function count(d, name, scopes, n)
  for _, s in ipairs(scopes) do redis.call('HINCRBYFLOAT', HEALTH .. d, name .. '|' .. s, n) end
  redis.call('ZADD', DAYS, d, d)
end
local function entry(x, o, state, detail)
  feed(FEED, FEED_MAXLEN, {
    kind = 'maintenance', event = x.kind, order = o.id, event_id = x.event_id, state = state,
    team = o.team, village = o.village, township = o.township, district = o.district,
    grid_id = o.grid_id, lat = o.lat, lon = o.lon, at = x.now, observed_at = x.at,
    detail = detail})
end
local function start(x)
  if redis.call('EXISTS', x.order_key) == 1 then return 0 end
  local o = {}
  for i = 1, #x.f, 2 do o[x.f[i]] = x.f[i + 1] end
  local older = redis.call('GET', x.subject_key)
  if older then  -- its end never came (it cannot, in order): superseded by this one
    redis.call('HSET', MAINT .. older, 'state', 'resolved', 'resolved_at', x.at,
               'end_event', x.event_id)
    redis.call('ZREM', OPEN, older)
  end
  redis.call('HSET', x.order_key, unpack(x.f))
  redis.call('ZADD', OPEN, x.at, o.id)
  redis.call('SET', x.subject_key, o.id)
  count(day(tonumber(x.at)), x.counted[1], x.scopes, 1)
  entry(x, o, 'open', x.detail)
  tell(x.streams, MAXLEN, x.message)
  return 1
end
local function finish(x)
  local id = redis.call('GET', x.subject_key)
  if not id then return 0 end
  local key = MAINT .. id
  local since = tonumber(redis.call('HGET', key, 'since'))
  local at = tonumber(x.at)
  redis.call('HSET', key, 'state', 'resolved', 'resolved_at', x.at, 'end_event', x.event_id,
             'silent_s', tostring(at - since))
  redis.call('ZREM', OPEN, id)
  redis.call('DEL', x.subject_key)
  local t = since
  while t < at do
    local d = day(t)
    local stop = math.min(at, (d + 1) * 86400 - OFFSET)
    count(d, x.counted[2], x.scopes, stop - t)
    t = stop
  end
  local h = redis.call('HMGET', key, 'id', 'team', 'village', 'township', 'district', 'grid_id',
                       'lat', 'lon')
  local o = {id = h[1], team = h[2], village = h[3], township = h[4], district = h[5],
             grid_id = h[6], lat = h[7], lon = h[8]}
  entry(x, o, 'resolved', x.detail)
  tell(x.streams, MAXLEN, x.message)
  return 1
end
local out = {}
for i, x in ipairs(cjson.decode(ARGV[1])) do
  if x.kind == 'device_new' then
    if redis.call('HSETNX', REGISTRY, x.device, x.registry) == 1 then
      count(day(tonumber(x.at)), 'devices', x.scopes, 1)
      out[i] = 1
    else
      out[i] = 0
    end
  elseif x.f then
    out[i] = start(x)
  else
    out[i] = finish(x)
  end
end
return out
"""
)

# ARGV: the order's key, who (the actor), when (epoch s), the asking team ('' for any), feed key,
# feed maxlen. Returns {'missing'}, {'forbidden', owner}, {'resolved'}, {'same'} (acked before,
# nothing changed) or {'acked'}.
ACK_SCRIPT = (
    PRELUDE
    + r"""
local key, by, now, team, FEED, FEED_MAXLEN = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local h = redis.call('HMGET', key, 'id', 'state', 'team', 'acked_at', 'village', 'township',
                     'district', 'grid_id', 'lat', 'lon', 'since')
if not h[1] then return {'missing'} end
if team ~= '' and h[3] ~= team then return {'forbidden', h[3] or ''} end
if h[2] ~= 'open' then return {'resolved'} end
if h[4] and h[4] ~= '' then return {'same'} end
redis.call('HSET', key, 'acked_at', now, 'acked_by', by)
feed(FEED, FEED_MAXLEN, {
  kind = 'maintenance', event = 'ack', order = h[1], state = 'open', team = h[3],
  village = h[5], township = h[6], district = h[7], grid_id = h[8], lat = h[9], lon = h[10],
  by = by, at = now, observed_at = h[11], detail = 'acknowledged by ' .. by})
return {'acked'}
"""
)


@dataclass
class MaintenanceCounts:
    opened: int = 0  # maintenance orders opened (outages, blind cells)
    resolved: int = 0  # ended: the device or a watcher is back
    devices: int = 0  # devices first heard (registered)
    repeated: int = 0  # events that changed nothing (redelivered)


def maintenance_id(event_id: str) -> str:
    """A maintenance order is named after the event that opened it."""
    return "mnt-" + event_id.removeprefix("dev-")


class Maintenance:
    def __init__(self, client: Any, routing: RoutingRules, feed_maxlen: int = FEED_MAXLEN) -> None:
        self.r = client
        self.routing = routing
        self.feed_maxlen = feed_maxlen
        self._script = client.register_script(MAINTAIN)
        self._ack = client.register_script(ACK_SCRIPT)

    def apply(self, events: Sequence[DeviceEvent], now: datetime) -> MaintenanceCounts:
        """Device events, in order, in one script call."""
        counts = MaintenanceCounts()
        if not events:
            return counts
        items = [self._item(e, now) for e in events]
        offset = int(self.routing.utc_offset.total_seconds())
        done = self._script(
            args=[
                orjson.dumps(items),
                keys.FEED,
                self.feed_maxlen,
                offset,
                keys.health(0)[:-1],
                keys.MAINT_OPEN,
                keys.DEVICES,
                keys.HEALTH_DAYS,
                keys.maintenance(""),
                STREAM_MAXLEN,
            ]
        )
        for e, changed in zip(events, done, strict=True):
            if not changed:
                counts.repeated += 1
            elif e.event is DeviceEventKind.DEVICE_NEW:
                counts.devices += 1
            elif e.event in _STARTS:
                counts.opened += 1
            else:
                counts.resolved += 1
        return counts

    def _item(self, e: DeviceEvent, now: datetime) -> dict[str, Any]:
        kind = _STARTS.get(e.event) or _ENDS.get(e.event) or "device"
        subject = e.device_id if kind == "device" and e.device_id else e.grid_id
        at = codec.epoch(e.observed_at)
        item: dict[str, Any] = {
            "kind": e.event.value,
            "at": at,
            "now": codec.epoch(now),
            "event_id": e.event_id,
            "scopes": _scopes(e),
        }
        if e.event is DeviceEventKind.DEVICE_NEW:
            registry = {
                "grid_id": e.grid_id,
                "township": e.township,
                "district": e.district,
                "source": e.source.value if e.source else None,
                "first_heard": at,
            }
            return item | {"device": subject, "registry": json.dumps(registry)}
        mid = maintenance_id(e.event_id)
        targets = self._targets(e, kind)
        item |= {
            "subject_key": keys.maintenance_subject(kind, subject),
            "order_key": keys.maintenance(mid),
            "counted": list(_COUNTED[kind]),
            "streams": [keys.notify(t) for t in targets],
            "detail": _detail(e),
        }
        if e.event in _STARTS:
            item["f"] = _fields(mid, kind, subject, e, now)
            item["message"] = _message("maintenance", mid, e, now)
        else:
            item["order_key"] = ""
            item["message"] = _message("maintenance_over", "", e, now)
        return item

    def _targets(self, e: DeviceEvent, kind: str) -> list[str]:
        rule = self.routing.maintenance
        names = {"team": e.team, "village": e.village, "township": e.township}
        names["district"] = e.district
        out = []
        for name in rule.device_down if kind == "device" else rule.cell_blind:
            if name in names:
                if names[name]:
                    out.append(f"{name}:{names[name]}")
            else:
                out.append(f"org:{name}")
        return out or [f"org:{self.routing.fallback}"]

    def ack(
        self, mid: str, by: str, now: datetime, team: str | None = None
    ) -> tuple[MaintenanceOrder, bool]:
        """`by` acknowledges open order `mid` (a team's token: `team`, its own only): the order
        and whether this changed it (False: acknowledged before). OrderNotFound, OrderForbidden,
        InvalidTransition (resolved), DispatchError (no valid `by`) change nothing."""
        check_actor(by, f"maintenance order {mid}")
        feed = [keys.FEED, self.feed_maxlen]
        answer = self._ack(args=[keys.maintenance(mid), by, codec.epoch(now), team or "", *feed])
        verdict, *rest = [x.decode() if isinstance(x, bytes) else str(x) for x in answer]
        if verdict == "missing":
            raise OrderNotFound(f"no maintenance order {mid!r}")
        if verdict == "forbidden":
            raise OrderForbidden(
                f"maintenance order {mid} belongs to team {rest[0] or '(none)'}, not {team}",
                rest[0],
            )
        if verdict == "resolved":
            raise InvalidTransition(f"maintenance order {mid} is resolved: nothing to acknowledge")
        order = self.get(mid)
        assert order is not None  # it was there a moment ago, and orders are never deleted
        return order, verdict == "acked"

    # -- reading --------------------------------------------------------------------------------
    def open_orders(self, team: str | None = None, limit: int = 1000) -> list[MaintenanceOrder]:
        """Open maintenance orders, newest first (a team's only, with `team`), `limit` at most."""
        ids = self.r.zrevrange(keys.MAINT_OPEN, 0, -1 if team else limit - 1)
        orders = [o for o in self._read([i.decode() for i in ids]) if o is not None]
        if team is not None:
            orders = [o for o in orders if o.team == team]
        return orders[:limit]

    def get(self, mid: str) -> MaintenanceOrder | None:
        (order,) = self._read([mid])
        return order

    def _read(self, ids: list[str]) -> list[MaintenanceOrder | None]:
        pipe = self.r.pipeline(transaction=False)
        for mid in ids:
            pipe.hgetall(keys.maintenance(mid))
        return [_order(codec.text(h)) if h else None for h in pipe.execute()]


def _order(h: dict[str, str]) -> MaintenanceOrder:
    def time(name: str) -> datetime | None:
        return codec.from_epoch(h[name].encode()) if h.get(name) else None

    def number(name: str) -> float | None:
        return float(h[name]) if h.get(name) else None

    since, created = time("since"), time("created_at")
    assert since is not None and created is not None  # written by every start
    return MaintenanceOrder(
        id=h["id"],
        kind=h["kind"],
        subject=h["subject"],
        source=h.get("source") or None,
        state=h["state"],
        since=since,
        resolved_at=time("resolved_at"),
        silent_s=number("silent_s"),
        created_at=created,
        last_heard=time("last_heard"),
        interval_s=number("interval_s"),
        devices=int(h.get("devices") or 0),
        acked_at=time("acked_at"),
        acked_by=h.get("acked_by") or None,
        **codec.place(h),
    )


def _scopes(e: DeviceEvent) -> list[str]:
    return ["all"] + [
        f"{level}:{name}"
        for level, name in (("township", e.township), ("district", e.district))
        if name
    ]


def _fields(mid: str, kind: str, subject: str, e: DeviceEvent, now: datetime) -> list[str]:
    fields = {
        "id": mid,
        "kind": kind,
        "subject": subject,
        "source": e.source.value if e.source else "",
        "state": "open",
        "since": codec.epoch(e.observed_at),
        "created_at": codec.epoch(now),
        "start_event": e.event_id,
        **codec.place_fields(e),
        "last_heard": codec.epoch(e.last_heard) if e.last_heard else "",
        "interval_s": "" if e.interval_s is None else repr(e.interval_s),
        "devices": str(e.devices),
    }
    return [x for pair in fields.items() for x in pair]


def _detail(e: DeviceEvent) -> str:
    where = e.grid_name or e.grid_id
    match e.event:
        case DeviceEventKind.DEVICE_DOWN:
            since = f"{e.last_heard:%Y-%m-%d %H:%M} UTC" if e.last_heard else "its first record"
            return f"{e.source} {e.device_id} in {where} silent since {since}"
        case DeviceEventKind.DEVICE_UP:
            return f"{e.source} {e.device_id} in {where} back after {_hours(e.silent_s)}"
        case DeviceEventKind.CELL_BLIND:
            return f"{where}: none of its {e.devices} watching devices is reporting"
        case _:
            return f"{where}: watched again"


def _message(kind: str, mid: str, e: DeviceEvent, at: datetime) -> list[str]:
    return [
        "kind", kind, "order", mid, "event", e.event.value, "grid_id", e.grid_id,
        "lat", repr(e.lat), "lon", repr(e.lon), "at", codec.epoch(at), "text", _detail(e),
    ]  # fmt: skip


def _hours(seconds: float | None) -> str:
    return f"{(seconds or 0) / 3600:.1f} h"
