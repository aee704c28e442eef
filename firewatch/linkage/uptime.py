"""The report's device figures: uptime and blind-cell hours, from the per-day counters that the
maintenance script keeps (maintenance.py, keys.health), a handful of reads, never a scan.

Per scope (`all`, `township:<t>`, `district:<d>`): devices known by the end of the period;
device-seconds possible (devices known each day x the day's seconds, up to now; a device counts
from the day it was first heard); seconds down (outages that ended, split by day, and those
still open up to now) and blind-cell seconds the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from firewatch.linkage import keys

DAY_S = 86_400


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
