"""epoch_seconds: the batch path equals datetime.timestamp() to the bit, whatever the offsets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from pydantic_core import TzInfo

from firewatch.ingest import epoch
from firewatch.ingest.epoch import epoch_seconds, times_epoch_seconds
from firewatch.ingest.validate import check_lines


def _timestamps(times: list[datetime]) -> np.ndarray:
    return np.array([t.timestamp() for t in times], np.float64)


def test_pydantic_datetimes_give_timestamp_to_the_bit() -> None:
    rng = random.Random(5)
    texts = []
    for _ in range(4000):
        # years across the float's exact range and beyond it (before 1685, after 2255)
        year = rng.choice([1, 1684, 1685, 1969, 1970, 2024, 2026, 2255, 2256, 9999])
        if rng.random() < 0.5:
            year = rng.randint(1, 9999)
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        stamp = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
        stamp += rng.choice(["", f".{rng.randint(0, 999):03d}", f".{rng.randint(0, 999999):06d}"])
        minutes = rng.randint(-1439, 1439)
        sign = "-" if minutes < 0 else "+"
        stamp += rng.choice(["Z", f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"])
        texts.append(stamp)
    texts += ["2024-02-29T23:59:59.999999-23:59", "2024-03-01T00:00:00+23:59", "1970-01-01T00:00Z"]
    lines = [
        orjson.dumps(
            {
                "source": "sensor",
                "device_id": f"s-{i}",
                "observed_at": text,
                "lat": 29.0,
                "lon": 118.8,
                "readings": {"temperature_c": 20.0},
            }
        )
        for i, text in enumerate(texts)
    ]
    checked = check_lines(lines, "test")
    assert not checked.rejects and len(checked.detections) == len(texts)
    times = [d["observed_at"] for d in checked.detections]
    assert {type(t.tzinfo) for t in times} == {TzInfo}  # the fast path is the one tested
    got = epoch_seconds(checked.detections)
    assert got.dtype == np.float64
    assert np.array_equal(got, _timestamps(times))
    # whole batches of a single offset, and of one record, too
    for part in (times[:1], times[:2], [t for t in times if t.utcoffset() == timedelta(0)]):
        assert np.array_equal(times_epoch_seconds(part), _timestamps(part))


def test_tzinfo_hash_tells_every_offset_in_seconds_apart() -> None:
    """What the grouping by hash relies on, for every offset TzInfo can hold; the import-time
    check covers the whole minutes only (cheap enough to run on every start)."""
    assert epoch._HASH_TELLS_OFFSETS
    offsets = range(-86399, 86400)
    assert len({hash(TzInfo(s)) for s in offsets}) == len(offsets)


def test_other_tzinfos_take_timestamp_record_by_record() -> None:
    # a zone whose offset changes with the date (DST), Python's fixed offsets, and TzInfo mixed
    berlin = ZoneInfo("Europe/Berlin")
    times = [
        datetime(2024, 3, 31, 1, 30, tzinfo=berlin),
        datetime(2024, 7, 1, 12, 0, tzinfo=berlin),
        datetime(2024, 12, 1, 12, 0, tzinfo=berlin),
        datetime(2024, 7, 1, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2024, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(2024, 7, 1, 12, 0, tzinfo=TzInfo(3600)),
    ]
    assert np.array_equal(times_epoch_seconds(times), _timestamps(times))
    assert times_epoch_seconds([]).shape == (0,)


def test_without_the_hash_check_every_record_takes_timestamp(monkeypatch) -> None:
    times = [datetime(2024, 7, 1, 12, 0, 0, i, tzinfo=TzInfo(i * 60)) for i in range(50)]
    monkeypatch.setattr(epoch, "_HASH_TELLS_OFFSETS", False)
    assert np.array_equal(times_epoch_seconds(times), _timestamps(times))
