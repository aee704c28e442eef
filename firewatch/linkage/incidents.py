"""Incident records: every incident event the linkage queue is given, kept per incident, and the
listing a dashboard pages through.

Written by the scripts that act on the events (scripts.py `record`, inside CREATE and INCIDENT),
so recording an event and dispatching on it are one atomic step; idempotent by the event's
deterministic `event_id` (fw:incident:<id>:seen): a redelivered event records nothing and
appends nothing to the change feed. An `updated` or `closed` event of an incident without a
record (dispatched before records existed) starts its record.

Listing (`query`). Every incident is in fw:incidents:by_first_seen and in one sorted set per
filterable value (status, severity, team, village, township, district: keys.incidents_by), all
scored by first_seen: the time of its first detection, which (unlike last_seen) hardly ever
changes, so a cursor (first_seen, id) pages without skipping or repeating incidents that are
updated meanwhile, and a CSV export that follows the cursors is complete. `since`/`until` bound
first_seen. A query walks the smallest index that applies (ZCOUNT of each over the time range,
one round trip), newest first, and checks the other filters on the records it reads. It reads at
most SCAN_LIMIT index entries per call: a page can then be short (even empty) with a cursor to
go on from, so a request costs at most a few thousand small hash reads however selective the
filters. Intersecting indexes in Redis (ZINTERSTORE) would write per request and cost as much
for the common case (one filter, or a small place), so it is not used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis

from firewatch.linkage import codec, keys
from firewatch.linkage.model import IncidentRecord, IncidentStatus, QueryError
from firewatch.model import EventKind, IncidentEvent, LocatedBy, Severity

LEVELS: tuple[str, ...] = ("team", "village", "township", "district")
MAX_LIMIT = 1000  # incidents one page returns at most
SCAN_LIMIT = 5000  # index entries one page examines at most
CHUNK = 250  # index entries read per round trip


# The indexes every incident is in, by field and value (its place indexes come with each event)
INDEXES: dict[str, Any] = {
    "all": keys.INCIDENTS_BY_FIRST_SEEN,
    "status": {s.value: keys.incidents_by("status", s.value) for s in IncidentStatus},
    "severity": {s.value: keys.incidents_by("severity", s.value) for s in Severity},
}
INDEXES_JSON = orjson.dumps(INDEXES)


def record_item(e: IncidentEvent) -> dict[str, Any]:
    """What the `record` Lua function needs to record event `e` (see scripts.py)."""
    iid = e.incident_id
    first_seen = codec.epoch(e.first_seen)
    levels = codec.levels(e)
    fields = [
        "severity", e.severity.value,
        "grid_id", e.grid_id,
        "grid_name", e.grid_name or "",
        "team", levels["team"] or "",
        "village", levels["village"] or "",
        "township", levels["township"] or "",
        "district", levels["district"] or "",
        "lat", repr(e.lat),
        "lon", repr(e.lon),
        "first_seen", first_seen,
        "last_seen", codec.epoch(e.last_seen),
        "detections", str(e.detections),
        "sources", orjson.dumps(e.sources).decode(),
        "rule", e.rule,
        "evidence", orjson.dumps(e.evidence).decode(),
        "current_lat", "" if e.current_lat is None else repr(e.current_lat),
        "current_lon", "" if e.current_lon is None else repr(e.current_lon),
        "extent", "" if e.extent is None else orjson.dumps(e.extent).decode(),
        "area_km2", repr(e.area_km2),
        "teams", orjson.dumps(e.teams).decode(),
        "located_by", e.located_by.value,
        "uncertainty_m", "" if e.uncertainty_m is None else repr(e.uncertainty_m),
    ]  # fmt: skip
    plural = "" if e.detections == 1 else "s"
    return {
        "key": keys.incident_record(iid),
        "events": keys.incident_events(iid),
        "seen": keys.incident_seen(iid),
        "places": [keys.incidents_by(level, name) for level, name in levels.items() if name],
        "incident": iid,
        "event_id": e.event_id,
        "kind": e.event.value,
        "json": e.model_dump_json(),
        "fields": fields,
        "detections": e.detections,
        "severity": e.severity.value,
        "score": first_seen,
        "observed_at": codec.epoch(e.observed_at),
        "detail": f"{e.detections} detection{plural}, opened by rule {e.rule}",
    }


@dataclass(frozen=True)
class Query:
    """Filters of an incident listing; None: any. since/until bound first_seen (inclusive)."""

    status: IncidentStatus | None = None
    severity: Severity | None = None
    team: str | None = None
    village: str | None = None
    township: str | None = None
    district: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def filters(self) -> dict[str, str]:
        """field -> value of every filter given (time aside)."""
        given = {
            "status": self.status.value if self.status else None,
            "severity": self.severity.value if self.severity else None,
            "team": self.team,
            "village": self.village,
            "township": self.township,
            "district": self.district,
        }
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class _Position:
    score: float
    incident_id: str


def query(
    client: redis.Redis, q: Query, limit: int = 50, cursor: str | None = None
) -> tuple[list[IncidentRecord], str | None]:
    """One page of incidents matching `q`, newest first by first_seen, and the cursor of the
    next page (None: there is no more). Events, orders and logs are left out (see `get`)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"incident listing: limit must be 1..{MAX_LIMIT}, not {limit}")
    for name, at in (("since", q.since), ("until", q.until)):
        if at is not None and at.tzinfo is None:
            raise QueryError(f"incident listing: {name} {at.isoformat()} needs a UTC offset")
    r: Any = client  # redis-py's return types are unions of its sync and async clients
    after = _parse_cursor(cursor)
    lo = q.since.timestamp() if q.since else -math.inf
    hi = q.until.timestamp() if q.until else math.inf
    filters = q.filters()
    candidates = [(None, keys.INCIDENTS_BY_FIRST_SEEN)] + [
        (field, keys.incidents_by(field, value)) for field, value in filters.items()
    ]
    pipe = r.pipeline(transaction=False)
    for _, key in candidates:
        pipe.zcount(key, _bound(lo), _bound(hi))
    sizes = pipe.execute()
    field, driver = candidates[min(range(len(sizes)), key=sizes.__getitem__)]
    # every filter is checked on the record, the driver's too: an index entry can only cost a read
    chunk = CHUNK if set(filters) - {field} else min(CHUNK, limit)
    out: list[IncidentRecord] = []
    scanned = 0
    for batch in _walk(r, driver, lo, hi, after, chunk):
        batch = batch[: SCAN_LIMIT - scanned]
        pipe = r.pipeline(transaction=False)
        for iid, _ in batch:
            pipe.hgetall(keys.incident_record(iid))
        for (iid, score), h in zip(batch, pipe.execute(), strict=True):
            scanned += 1
            if h and all(h.get(k.encode(), b"").decode() == v for k, v in filters.items()):
                out.append(decode(h))
            if len(out) == limit or scanned >= SCAN_LIMIT:
                return out, _cursor(_Position(score, iid))
    return out, None


def iterate(client: redis.Redis, q: Query, page: int = 500) -> Iterator[IncidentRecord]:
    """Every incident matching `q`, newest first, page by page (a CSV export of a listing)."""
    cursor: str | None = None
    while True:
        records, cursor = query(client, q, page, cursor)
        yield from records
        if cursor is None:
            return


def get(client: redis.Redis, incident_id: str) -> tuple[IncidentRecord | None, str | None]:
    """An incident's record with its events (None when it has none), and its order's id (also
    for an incident dispatched before records existed)."""
    r: Any = client
    pipe = r.pipeline(transaction=True)
    pipe.hgetall(keys.incident_record(incident_id))
    pipe.lrange(keys.incident_events(incident_id), 0, -1)
    pipe.get(keys.incident(incident_id))
    h, raw, order = pipe.execute()
    oid = order.decode() if order else None
    if not h:
        return None, oid
    got = [IncidentEvent.model_validate_json(x) for x in raw]
    return decode(h).model_copy(update={"events": got}), oid


def decode(h: dict[bytes, bytes]) -> IncidentRecord:
    s = codec.text(h)
    return IncidentRecord(
        id=s["id"],
        status=IncidentStatus(s["status"]),
        severity=Severity(s["severity"]),
        **codec.place(s),
        first_seen=codec.at(h[b"first_seen"]),
        last_seen=codec.at(h[b"last_seen"]),
        detections=int(s["detections"]),
        sources=orjson.loads(s["sources"]),
        rule=s["rule"],
        evidence=orjson.loads(s["evidence"]),
        # recorded since incidents follow spreading fires (2026-12-03): absent in older records
        current_lat=float(s["current_lat"]) if s.get("current_lat") else None,
        current_lon=float(s["current_lon"]) if s.get("current_lon") else None,
        extent=orjson.loads(s["extent"]) if s.get("extent") else None,
        area_km2=float(s.get("area_km2") or 0.0),
        teams=orjson.loads(s["teams"]) if s.get("teams") else [],
        # recorded since cameras are placed by their sights: absent in older records
        located_by=LocatedBy(s.get("located_by") or LocatedBy.DETECTION),
        uncertainty_m=float(s["uncertainty_m"]) if s.get("uncertainty_m") else None,
        closed_at=codec.from_epoch(h.get(b"closed_at")),
        recorded_at=codec.at(h[b"recorded_at"]),
        updated_at=codec.at(h[b"updated_at"]),
        last_event=EventKind(s["last_event"]),
        order_id=s.get("order_id") or None,
    )


def _walk(
    r: Any, key: str, lo: float, hi: float, after: _Position | None, chunk: int
) -> Iterator[list[tuple[str, float]]]:
    """Batches of (id, score) of index `key` in [lo, hi], newest first (ties: id descending, as
    ZREVRANGEBYSCORE gives them), strictly after `after`. Ties across batches are stepped over
    by counting what was read at the lowest score so far."""
    top, skip = (min(hi, after.score), 0) if after else (hi, 0)
    while True:
        got = r.zrevrangebyscore(
            key, _bound(top), _bound(lo), start=skip, num=chunk, withscores=True
        )
        batch = [(m.decode(), float(s)) for m, s in got]
        if not batch:
            return
        yield [
            (iid, s)
            for iid, s in batch
            if not (after and s == after.score and iid >= after.incident_id)
        ]
        if len(batch) < chunk:
            return
        last = batch[-1][1]
        tail = sum(1 for _, s in batch if s == last)
        skip, top = (skip + len(batch) if last == top else tail), last


def _bound(x: float) -> str:
    return "+inf" if x == math.inf else "-inf" if x == -math.inf else repr(x)


def _cursor(p: _Position) -> str:
    return f"{p.score!r}/{p.incident_id}"


def _parse_cursor(cursor: str | None) -> _Position | None:
    if cursor is None:
        return None
    score, _, iid = cursor.partition("/")
    try:
        value = float(score)
    except ValueError:
        value = math.nan
    if not iid or not math.isfinite(value):
        raise QueryError(f"incident listing: {cursor!r} is not a cursor this listing returned")
    return _Position(value, iid)
