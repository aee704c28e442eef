"""Validated detections' event times as epoch seconds, a batch at a time.

`datetime.timestamp()` on the datetimes pydantic makes was the largest single cost of the engine
after validation (0.5-0.6 us a record: each call goes into the Rust object pydantic sets as
tzinfo for the UTC offset, and builds a timedelta; benchmarks/README.md, Engine). So a batch is
read in C-level passes and numpy instead:

- the wall-clock fields from each datetime's pickle state (`__reduce__`: 10 bytes, year, month,
  day, hour, minute, second, microsecond; the layout of the pickle format, which every Python
  keeps readable), turned into microseconds since 1970 by numpy;
- the UTC offset once per distinct offset, not once per record: the records are grouped by the
  hash of their tzinfo, and each group's offset is asked of its first member. That is exact
  when the tzinfo is pydantic's fixed-offset `TzInfo` and its hash tells every offset apart;
  `_HASH_TELLS_OFFSETS` checks the latter at import, for every UTC offset in whole minutes
  (tests/ingest/test_epoch.py for every offset in seconds, on the pydantic-core installed). A
  batch with any other tzinfo (a caller's own datetimes: a zone whose offset varies with the date)
  takes `datetime.timestamp` record by record, as does a time too far from 1970 for a float64 to
  hold its microseconds exactly (before 1685 or after 2255).

The result equals `datetime.timestamp()` to the bit: both divide the same integer count of
microseconds by 10**6 with one correct rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
from pydantic_core import TzInfo

_OBSERVED_AT = itemgetter("observed_at")
_TZINFO = attrgetter("tzinfo")
_ARGS, _STATE = itemgetter(1), itemgetter(0)  # (cls, (state, tzinfo)) -> state
_MICROSECOND = timedelta(microseconds=1)
_EXACT = 2**53  # microseconds a float64 holds exactly
# (datetime, (state, tzinfo)): typeshed types __reduce__ as object's (str | tuple[Any, ...])
_REDUCE: Callable[[datetime], tuple[Any, tuple[bytes, Any]]] = datetime.__reduce__  # type: ignore[assignment]


def _hash_tells_offsets() -> bool:
    """Whether TzInfo's hash differs for every whole-minute UTC offset (-23:59 to +23:59)."""
    try:
        hashes = {hash(TzInfo(minutes * 60)) for minutes in range(-1439, 1440)}
    except Exception:  # a pydantic-core whose TzInfo is built otherwise: no fast path
        return False
    return len(hashes) == 2 * 1439 + 1


_HASH_TELLS_OFFSETS = _hash_tells_offsets()


def epoch_seconds(detections: Sequence[Any]) -> np.ndarray:
    """Each detection's observed_at (timezone-aware) as epoch seconds (float64)."""
    return times_epoch_seconds(list(map(_OBSERVED_AT, detections)))


def times_epoch_seconds(times: list[datetime]) -> np.ndarray:
    """`datetime.timestamp()` of each aware datetime, as one float64 array."""
    n = len(times)
    zones = list(map(_TZINFO, times))
    if not n or not _HASH_TELLS_OFFSETS or set(map(type, zones)) != {TzInfo}:
        return np.fromiter(map(datetime.timestamp, times), np.float64, n)
    state = b"".join(map(_STATE, map(_ARGS, map(_REDUCE, times))))  # C-level passes
    raw = np.frombuffer(state, np.uint8).reshape(n, 10).astype(np.int64)
    year, month, day = raw[:, 0] * 256 + raw[:, 1], raw[:, 2] & 0x7F, raw[:, 3]
    months = (year - 1970) * 12 + month - 1
    days = months.astype("M8[M]").astype("M8[D]").astype(np.int64) + day - 1
    seconds = ((days * 24 + raw[:, 4]) * 60 + raw[:, 5]) * 60 + raw[:, 6]
    micro = seconds * 1_000_000 + ((raw[:, 7] << 16) | (raw[:, 8] << 8) | raw[:, 9])
    hashes = np.fromiter(map(hash, zones), np.int64, n)
    _, first, group = np.unique(hashes, return_index=True, return_inverse=True)
    offset = [times[i].utcoffset() // _MICROSECOND for i in first.tolist()]
    micro -= np.array(offset, np.int64)[group.reshape(-1)]
    out = micro / 1e6
    for i in np.flatnonzero(np.abs(micro) >= _EXACT).tolist():
        out[i] = times[i].timestamp()
    return out
