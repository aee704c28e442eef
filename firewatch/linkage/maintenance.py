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

The report's device figures (`health_rows`) come from the per-day counters (keys.health): device-
seconds possible (devices known each day x the day's seconds, up to now), seconds down (outages
that ended, split by day, and those still open up to now) and blind-cell seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from firewatch.linkage import codec, keys
from firewatch.linkage.feed import FEED_MAXLEN
from firewatch.linkage.scripts import PRELUDE
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
        "grid_id": e.grid_id,
        "grid_name": e.grid_name or "",
        "team": e.team or "",
        "village": e.village or "",
        "township": e.township or "",
        "district": e.district or "",
        "lat": repr(e.lat),
        "lon": repr(e.lon),
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


# -- the report's device figures --------------------------------------------------------------
@dataclass(frozen=True)
class HealthRow:
    scope: str  # `all`, `township:<t>`, `district:<d>`
    devices: int  # known by the end of the period
    outages: int  # devices gone silent in the period
    down_hours: float  # device-hours silent in the period (outages still open: up to now)
    uptime: float | None  # 1 - down / device-hours possible (None: no device known)
    blind: int  # cells left unwatched in the period
    blind_cell_hours: float


def epoch_day(d: date) -> int:
    """A report date as the day number the script counts in (days since 1970-01-01 there)."""
    return d.toordinal() - date(1970, 1, 1).toordinal()


def health_rows(
    r: Any,
    first: date | None,
    last: date | None,
    by: Sequence[str],
    now: datetime,
    offset: timedelta,
) -> list[HealthRow]:
    """Per scope (`all`, then each `by` level's values), the period's device figures."""
    days = [int(d) for d in r.zrange(keys.HEALTH_DAYS, 0, -1)]
    today = int((now.timestamp() + offset.total_seconds()) // DAY_S)
    lo = epoch_day(first) if first else min(days, default=today)
    hi = epoch_day(last) if last else max([*days, today])
    known = [d for d in days if d <= hi]
    tables = dict(zip(known, _hashes(r, known), strict=True))
    scopes = {"all"}
    for table in tables.values():
        scopes.update(name.split("|", 1)[1] for name in table)
    wanted = ["all", *sorted(s for s in scopes if s.split(":", 1)[0] in by)]
    shift = offset.total_seconds()
    ongoing = _ongoing(r, lo * DAY_S - shift, (hi + 1) * DAY_S - shift, now)
    rows = []
    for scope in wanted:

        def value(d: int, name: str, scope: str = scope) -> float:
            return tables.get(d, {}).get(f"{name}|{scope}", 0.0)

        devices, possible = 0.0, 0.0
        for d in range(min(lo, min(known, default=lo)), hi + 1):
            devices += value(d, "devices")
            if d >= lo:
                begin = d * DAY_S - shift
                possible += devices * max(0.0, min(DAY_S, now.timestamp() - begin))
        span = range(lo, hi + 1)
        down = sum(value(d, "down_s") for d in span) + ongoing.get(("device", scope), 0.0)
        blind = sum(value(d, "blind_s") for d in span) + ongoing.get(("cell", scope), 0.0)
        rows.append(
            HealthRow(
                scope=scope,
                devices=int(devices),
                outages=int(sum(value(d, "downs") for d in span)),
                down_hours=round(down / 3600, 3),
                uptime=round(1 - down / possible, 6) if possible > 0 else None,
                blind=int(sum(value(d, "blinds") for d in span)),
                blind_cell_hours=round(blind / 3600, 3),
            )
        )
    return rows


def _hashes(r: Any, days: list[int]) -> list[dict[str, float]]:
    pipe = r.pipeline(transaction=False)
    for d in days:
        pipe.hgetall(keys.health(d))
    return [{k.decode(): float(v) for k, v in h.items()} for h in pipe.execute()]


def _ongoing(r: Any, begin: float, end: float, now: datetime) -> dict[tuple[str, str], float]:
    """Seconds of the open maintenance orders within [begin, end), up to now, by (kind, scope)."""
    out: dict[tuple[str, str], float] = {}
    opened = r.zrange(keys.MAINT_OPEN, 0, -1, withscores=True)
    if not opened:
        return out
    pipe = r.pipeline(transaction=False)
    for mid, _ in opened:
        pipe.hmget(keys.maintenance(mid.decode()), "kind", "township", "district")
    stop = min(end, now.timestamp())
    for (_, since), (kind, township, district) in zip(opened, pipe.execute(), strict=True):
        seconds = stop - max(begin, since)
        if seconds <= 0 or kind is None:
            continue
        scopes = ["all"]
        scopes += [f"township:{township.decode()}"] if township else []
        scopes += [f"district:{district.decode()}"] if district else []
        for scope in scopes:
            key = (kind.decode(), scope)
            out[key] = out.get(key, 0.0) + seconds
    return out
